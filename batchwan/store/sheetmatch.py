"""Which sheet a run belongs to: recognised by the rows it holds, not by the file's path.

A sheet renamed or moved keeps its rows, so its run goes on; a different sheet shares few or no
row keys with the record and is refused before anything is sent.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from batchwan.errors import StateError
from batchwan.store.schema import SCHEMA_VERSION, iso_utc, now_utc

#: Of the rows the record and the sheet could share, at least this share must match.
MIN_SHARED = 0.5


@dataclass(frozen=True)
class SheetMatch:
    """What comparing the sheet read now with the record found."""

    same_path: bool
    shared: int
    warning: str | None


def match_sheet(
    where: str, owner: str | None, sheet: str, recorded: Collection[str], keys: Collection[str]
) -> SheetMatch:
    """Accept the sheet (maybe with a warning) or raise StateError with advice that costs nothing.

    ``owner`` is the path the record was made from, ``recorded`` the row keys it holds, ``keys``
    the row keys of the sheet read now.
    """
    if not owner or owner == sheet:
        return SheetMatch(True, 0, None)
    if not recorded:  # the record never saw a row: nothing to confuse
        return SheetMatch(False, 0, f"{where}: the record was made for {owner}; now {sheet}")
    shared = len(set(recorded) & set(keys))
    needed = max(1, int(MIN_SHARED * min(len(recorded), max(1, len(keys)))))
    if shared >= needed:
        return SheetMatch(
            False,
            shared,
            f"{where} was made from {owner}; {sheet} holds {shared} of its rows, so this is "
            "the same sheet renamed or moved: continuing its run (nothing already sent is "
            "sent again)",
        )
    raise StateError(
        f"{where} holds the run of {owner}, and {sheet} shares only {shared} of its "
        f"{len(recorded)} rows: it is another sheet. Nothing was sent; choose another --out "
        "for this sheet (or point the run at its own sheet again)"
    )


def claim_updates(
    meta: Mapping[str, str], sheet_text: str, model: str, max_cost: float | None
) -> dict[str, str]:
    """The meta entries a run's start writes: its sheet, model and ceiling, when it started
    (and, the first time, when the run began and the schema it was written with)."""
    stamp = iso_utc(now_utc()) or ""
    updates = {
        "sheet": sheet_text,
        "model": model,
        "run_started_at": stamp,
        "max_cost": "" if max_cost is None else str(max_cost),
    }
    if "started_at" not in meta:
        updates["started_at"] = stamp
        updates["schema"] = SCHEMA_VERSION
    return updates
