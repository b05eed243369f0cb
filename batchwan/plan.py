"""The plan of a run: what would happen to each row, the bill, and how long it should take."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from batchwan.catalog.prices import PriceBook, normalise_resolution
from batchwan.catalog.registry import find_model
from batchwan.pricing import book_of, row_cost
from batchwan.values import CheckedRow, Status

#: The provider's typical render time for a clip of RENDER_CLIP_SECONDS, in minutes (API README:
#: 1 to 5 minutes for a 5 s clip).
RENDER_MINUTES_PER_5S: tuple[float, float] = (1.0, 5.0)
RENDER_CLIP_SECONDS = 5

# Money is compared to the cent; without slack, 0.1 + 0.2 > 0.3 would leave a row out.
_BUDGET_SLACK = 1e-9


@dataclass(frozen=True)
class PlanLine:
    """The new rows of one model at one resolution: how many, their seconds and their cost."""

    model: str
    resolution: str
    rows: int
    seconds: int
    cost: float | None  # None: nobody knows this model's price at this resolution
    sizes: tuple[str, ...] = ()  # a text model's sizes, as sent

    @property
    def label(self) -> str:
        """``wan2.6-t2v 720P (size 1280*720)``."""
        sizes = f" (size {', '.join(self.sizes)})" if self.sizes else ""
        return f"{self.model} {self.resolution}{sizes}"


@dataclass(frozen=True)
class Plan:
    """What a run would do now, counted by row, by seconds of video, by USD and by minutes."""

    new: int
    done: int
    in_flight: int
    invalid: int
    duplicate: int
    failed: int
    unknown: int
    video_seconds: dict[str, int]  # by resolution, rows that would be sent (new)
    cost_new: float  # estimated USD of what would be sent now
    cost_committed: float  # already committed in this run folder (submitted, not failed)
    estimated_minutes: tuple[float, float]  # low, high
    max_cost: float | None
    over_budget_rows: int  # new rows that would stay pending under max_cost
    lines: tuple[PlanLine, ...] = ()  # new rows by model and resolution
    unpriced_rows: int = 0  # new rows whose price is unknown (not in cost_new)

    @property
    def total_rows(self) -> int:
        """Every row of the sheet, whatever happens to it."""
        return (
            self.new
            + self.done
            + self.in_flight
            + self.invalid
            + self.duplicate
            + self.failed
            + self.unknown
        )

    @property
    def cost_total(self) -> float:
        """What the run folder will have cost once the new rows are sent too."""
        return self.cost_committed + self.cost_new


def _bucket(row: CheckedRow, recorded: Status | None, *, retry: frozenset[Status]) -> str:
    """Name what would happen to one row: a field of Plan."""
    # The row's own check comes first: a duplicate shares its key with the row it repeats.
    if row.status is Status.INVALID:
        return "invalid"
    if row.status is Status.DUPLICATE:
        return "duplicate"
    if recorded in retry:
        return "new"
    return {
        Status.SUCCEEDED: "done",
        Status.RUNNING: "in_flight",
        Status.FAILED: "failed",
        Status.UNKNOWN: "unknown",
    }.get(recorded, "new")  # type: ignore[arg-type]  # None and PENDING both mean not sent yet


def _clip_minutes(duration: int) -> tuple[float, float]:
    scale = duration / RENDER_CLIP_SECONDS
    return RENDER_MINUTES_PER_5S[0] * scale, RENDER_MINUTES_PER_5S[1] * scale


def estimate_minutes(
    new_durations: Sequence[int],
    in_flight_durations: Sequence[int],
    *,
    concurrency: int,
    rate: float,
) -> tuple[float, float]:
    """Wall-clock minutes, low and high, to send the new rows and collect every row in flight.

    Assumptions: a clip renders in 1 to 5 minutes per 5 s of video (a 10 s clip 2 to 10
    minutes), whatever its resolution; the provider starts a task as soon as it is accepted;
    polling and downloading add nothing. Low: the fast renders spread evenly over the
    concurrency slots, never less than the longest single clip nor than the time the create
    rate needs to send them all; rows already in flight might finish at once. High: the slow
    renders of new and in-flight rows, queued greedily on the slots (sum / slots plus the
    longest clip, Graham's bound), and never less than the last create plus its slow render.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    if not rate > 0:
        raise ValueError(f"rate must be positive, got {rate}")
    new = [_clip_minutes(d) for d in new_durations]
    flying = [_clip_minutes(d)[1] for d in in_flight_durations]
    if not new and not flying:
        return 0.0, 0.0
    # The first create goes at once; the last one (n - 1) / rate seconds later.
    send_minutes = max(len(new) - 1, 0) / rate / 60
    low = 0.0
    if new:
        lows = [lo for lo, _ in new]
        low = max(math.fsum(lows) / concurrency, max(lows), send_minutes)
    highs = [hi for _, hi in new] + flying
    longest = max(highs)
    high = math.fsum(highs) / concurrency + longest * (1 - 1 / concurrency)
    if new:
        high = max(high, send_minutes + max(hi for _, hi in new))
    return low, high


def _over_budget(costs: Sequence[float | None], committed: float, max_cost: float | None) -> int:
    """Count the priced new rows left pending when rows are sent in sheet order until one does
    not fit (rows of unknown price are held back under a ceiling, and counted apart)."""
    if max_cost is None:
        return 0
    priced = [cost for cost in costs if cost is not None]
    spent = committed
    for taken, cost in enumerate(priced):
        if spent + cost > max_cost + _BUDGET_SLACK:
            return len(priced) - taken
        spent += cost
    return 0


def make_plan(
    rows: Sequence[CheckedRow],
    existing: Mapping[str, Status],
    *,
    prices: PriceBook | Mapping[str, float],
    concurrency: int,
    rate: float,
    max_cost: float | None = None,
    committed: float = 0.0,
    retry_failed: bool = False,
    resubmit_unknown: bool = False,
) -> Plan:
    """Count what a run would do with these rows, given what the run folder already recorded.

    ``existing`` maps a row key to its recorded status (empty for a new run); ``committed`` is
    the USD already committed in the run folder. With ``retry_failed`` or ``resubmit_unknown``
    those rows count as new, as the runner would send them again.
    """
    retry = frozenset(
        status
        for status, wanted in ((Status.FAILED, retry_failed), (Status.UNKNOWN, resubmit_unknown))
        if wanted
    )
    counts = dict.fromkeys(
        ("new", "done", "in_flight", "invalid", "duplicate", "failed", "unknown"), 0
    )
    seconds: dict[str, int] = {}
    new_costs: list[float | None] = []
    new_durations: list[int] = []
    in_flight_durations: list[int] = []
    by_line: dict[tuple[str, str], list[CheckedRow]] = {}
    book = book_of(prices)
    for row in rows:
        bucket = _bucket(row, existing.get(row.key), retry=retry)
        counts[bucket] += 1
        if bucket == "new":
            resolution = normalise_resolution(row.resolution)
            new_costs.append(row_cost(row, book))
            seconds[resolution] = seconds.get(resolution, 0) + row.duration
            new_durations.append(row.duration)
            by_line.setdefault((row.model, resolution), []).append(row)
        elif bucket == "in_flight":
            in_flight_durations.append(row.duration)
    return Plan(
        **counts,
        video_seconds=seconds,
        cost_new=math.fsum(cost for cost in new_costs if cost is not None),
        cost_committed=committed,
        estimated_minutes=estimate_minutes(
            new_durations, in_flight_durations, concurrency=concurrency, rate=rate
        ),
        max_cost=max_cost,
        over_budget_rows=_over_budget(new_costs, committed, max_cost),
        lines=_plan_lines(by_line, book),
        unpriced_rows=sum(cost is None for cost in new_costs),
    )


def _plan_lines(
    by_line: Mapping[tuple[str, str], Sequence[CheckedRow]], book: PriceBook
) -> tuple[PlanLine, ...]:
    lines = []
    for (model, resolution), group in by_line.items():
        costs = [book.cost(model, resolution, row.duration) for row in group]
        known = [c for c in costs if c is not None]
        spec = find_model(model)
        default = spec.default_size if spec is not None else None
        # A text model's rows are shown with the sizes they are sent at, defaults included.
        sizes = sorted({str(row.request.get("size") or default or "") for row in group} - {""})
        lines.append(
            PlanLine(
                model, resolution, len(group), sum(row.duration for row in group),
                math.fsum(known) if len(known) == len(costs) else None, tuple(sizes),
            )
        )  # fmt: skip
    return tuple(sorted(lines, key=lambda line: (line.model, _resolution_order(line.resolution))))


def format_money(usd: float) -> str:
    """USD as a person reads it: ``$1,500.00``."""
    return f"${usd:,.2f}"


def format_minutes(minutes: float) -> str:
    """A duration in minutes as a person reads it: ``45 min``, ``2 h 05 min``."""
    if minutes < 1:
        return "under 1 min"
    whole = math.ceil(minutes)
    hours, rest = divmod(whole, 60)
    return f"{hours} h {rest:02d} min" if hours else f"{rest} min"


def _resolution_order(resolution: str) -> tuple[int, str]:
    digits = resolution.rstrip("P")
    return (int(digits) if digits.isdigit() else 1 << 30, resolution)


def _rows_lines(plan: Plan) -> list[tuple[str, str, str]]:
    lines = [
        ("rows", "", ""),
        ("  new, would be sent", str(plan.new), ""),
        ("  already done", str(plan.done), ""),
        ("  in flight, would be polled", str(plan.in_flight), ""),
    ]
    # Failed and unknown rows only appear on a rerun; a first plan stays short without them.
    if plan.failed:
        lines.append(("  failed, not sent again", str(plan.failed), "--retry-failed sends them"))
    if plan.unknown:
        lines.append(
            ("  unknown, not sent again", str(plan.unknown), "--resubmit-unknown sends them")
        )
    lines += [
        ("  invalid", str(plan.invalid), "batchwan validate says why" if plan.invalid else ""),
        ("  duplicate", str(plan.duplicate), ""),
        ("  total", str(plan.total_rows), ""),
    ]
    return lines


def _video_lines(plan: Plan) -> list[tuple[str, str, str]]:
    lines = [("video to generate", "", "")]
    for line in plan.lines:
        cost = (
            format_money(line.cost)
            if line.cost is not None
            else "price unknown: set it under `prices:` in the job file"
        )
        lines.append((f"  {line.label}", f"{line.seconds:,} s", cost))
    total = sum(plan.video_seconds.values())
    lines.append(("  total", f"{total:,} s", format_minutes(total / 60) if total >= 60 else ""))
    return lines


def _cost_lines(plan: Plan) -> list[tuple[str, str, str]]:
    lines = [
        ("cost (estimated, USD)", "", ""),
        ("  new", format_money(plan.cost_new), ""),
        ("  already committed", format_money(plan.cost_committed), ""),
        ("  total", format_money(plan.cost_total), ""),
    ]
    if plan.unpriced_rows:
        held = "; --max-cost keeps them pending" if plan.max_cost is not None else ""
        lines.append(("  price unknown", _rows(plan.unpriced_rows), f"not counted above{held}"))
    if plan.max_cost is not None:
        fit = plan.new - plan.over_budget_rows - plan.unpriced_rows
        if plan.cost_committed > plan.max_cost + 1e-9:
            over = format_money(plan.cost_committed - plan.max_cost)
            note = f"already exceeded by {over}: no new row would be sent"
        elif plan.over_budget_rows:
            pending = plan.over_budget_rows
            note = f"{fit:,} of {plan.new:,} new rows fit, {pending:,} would stay pending"
        elif plan.unpriced_rows:
            note = f"{fit:,} of {plan.new:,} new rows fit; the others have no known price"
        elif plan.new:
            note = f"all {plan.new:,} new rows fit"
        else:
            note = "no new rows to send"
        lines.append(("  max cost", format_money(plan.max_cost), note))
    return lines


def _rows(count: int) -> str:
    return f"{count:,} row" if count == 1 else f"{count:,} rows"


def format_plan(plan: Plan) -> str:
    """The text ``run --dry-run`` prints: rows by fate, seconds of video, cost, time, budget."""
    low, high = plan.estimated_minutes
    if high == 0:
        time_text = "nothing to wait for"
    elif format_minutes(low) == format_minutes(high):
        time_text = f"about {format_minutes(high)}"
    else:
        time_text = f"{format_minutes(low)} to {format_minutes(high)}"
    lines = [
        *_rows_lines(plan),
        ("", "", ""),
        *_video_lines(plan),
        ("", "", ""),
        *_cost_lines(plan),
        ("", "", ""),
        ("time", time_text, "at the typical 1-5 min per 5 s clip"),
    ]
    label_width = max(len(label) for label, value, _ in lines if value)
    value_width = max(len(value) for label, value, _ in lines if label.startswith("  "))
    out = []
    for label, value, note in lines:
        if label.startswith("  "):
            text = f"{label:<{label_width}}  {value:>{value_width}}"
        elif value:
            text = f"{label:<{label_width}}  {value}"
        else:
            text = label
        out.append(f"{text}  ({note})" if note else text)
    return "\n".join(line.rstrip() for line in out) + "\n"
