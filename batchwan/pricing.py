"""What rows cost under a job's prices, and which rows a ceiling holds back for want of one."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from batchwan.catalog.prices import PriceBook
from batchwan.values import CheckedRow, JobSpec, Status


def price_book(spec: JobSpec) -> PriceBook:
    """The prices of a job: the registry's, under its `prices:`."""
    return PriceBook(spec.prices, spec.model_prices)


def book_of(prices: PriceBook | Mapping[str, float]) -> PriceBook:
    """A PriceBook as given, or one over a plain resolution -> price table (every model)."""
    return prices if isinstance(prices, PriceBook) else PriceBook(by_resolution=prices)


def row_cost(row: CheckedRow, prices: PriceBook | Mapping[str, float]) -> float | None:
    """Estimated USD of one row at its model's price, None when the price is unknown."""
    return book_of(prices).cost(row.model, row.resolution, row.duration)


def unpriced_note(row: CheckedRow) -> str:
    """Why a row of unknown price is not sent under --max-cost, and what to do."""
    return (
        f"not sent: no known price for {row.model} at {row.resolution} and --max-cost is set; "
        f"give one under `prices:` in the job file (e.g. `{row.model}: "
        f"{{{row.resolution}: 0.10}}`)"
    )


def unpriced(rows: Sequence[CheckedRow], prices: PriceBook | Mapping[str, float]) -> list[str]:
    """``model at resolution`` for each price the valid rows need and nobody knows, sorted."""
    book = book_of(prices)
    # A row's price is known or not by its model and resolution: each pair is looked up once.
    kinds = {(row.model, row.resolution) for row in rows if row.status is Status.PENDING}
    return sorted(
        {f"{model} at {tier}" for model, tier in kinds if book.per_second(model, tier) is None}
    )


def hold_unpriced(
    rows: Sequence[CheckedRow], prices: PriceBook | Mapping[str, float], max_cost: float | None
) -> tuple[list[CheckedRow], list[CheckedRow]]:
    """(every row, the rows to send): under a ceiling, a valid row of unknown price stays
    pending with the reason as a note, rather than being counted as free."""
    if max_cost is None:
        return list(rows), list(rows)
    recorded: list[CheckedRow] = []
    sendable: list[CheckedRow] = []
    for row in rows:
        if row.status is Status.PENDING and row_cost(row, prices) is None:
            row = dataclasses.replace(row, notes=(*row.notes, unpriced_note(row)))
        else:
            sendable.append(row)
        recorded.append(row)
    return recorded, sendable
