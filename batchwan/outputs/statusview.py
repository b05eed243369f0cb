"""What `batchwan status` shows: headline figures and the rows that need attention, as text.

Pure functions of the records and the summary, so a test can pin every line; only ``load_run``
reads a run folder. The palette and the figures live here too, because report.html and
results.xlsx show the same statuses and numbers.
"""

from __future__ import annotations

import json
import operator
import sqlite3
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from batchwan.errors import StateError
from batchwan.outputs.groups import (
    by_columns,
    by_model,
    by_resolution,
    stored_breakdowns,
    stored_group_by,
)
from batchwan.outputs.results import SUMMARY_FILE, percentile, summarize
from batchwan.outputs.statustables import group_lines, runs_lines
from batchwan.safe_text import clean
from batchwan.store.records import count_statuses, read_meta, read_records, read_runs
from batchwan.values import RowRecord, RunLine, Status

#: The order statuses are listed in everywhere: outcomes first, then what is still open.
STATUS_ORDER: tuple[Status, ...] = (
    Status.SUCCEEDED,
    Status.FAILED,
    Status.UNKNOWN,
    Status.INVALID,
    Status.DUPLICATE,
    Status.RUNNING,
    Status.PENDING,
)


@dataclass(frozen=True)
class StatusColour:
    """How one status is painted: a strong colour for charts and text, a pale one for fills."""

    strong: str  # "#rrggbb"
    pale: str


#: One palette for report.html and results.xlsx, so a status looks the same in both.
STATUS_COLOURS: dict[Status, StatusColour] = {
    Status.SUCCEEDED: StatusColour("#1a7f37", "#dafbe1"),
    Status.FAILED: StatusColour("#cf222e", "#ffebe9"),
    Status.UNKNOWN: StatusColour("#9a6700", "#fff8c5"),
    Status.INVALID: StatusColour("#8250df", "#fbefff"),
    Status.DUPLICATE: StatusColour("#bc4c00", "#fff1e5"),
    Status.RUNNING: StatusColour("#0969da", "#ddf4ff"),
    Status.PENDING: StatusColour("#57606a", "#eaeef2"),
}

#: Statuses whose rows are listed under "needs attention".
ATTENTION: frozenset[Status] = frozenset(
    {Status.INVALID, Status.DUPLICATE, Status.FAILED, Status.UNKNOWN}
)

#: A task running longer than this is listed too: renders take 1 to 5 minutes, rarely 7.
LONG_RUNNING = timedelta(minutes=10)

ATTENTION_CAP = 20
LINE_WIDTH = 100


@dataclass(frozen=True)
class Headline:
    """The figures a reader looks at first, from the records and the run's summary."""

    rows: int
    counts: dict[Status, int]  # every status, in STATUS_ORDER
    currency: str
    estimated: float
    committed: float
    spent: float
    max_cost: float | None
    video_seconds: float
    by_resolution: dict[str, float]
    started_at: str | None
    updated_at: str | None
    wall_seconds: float | None
    render_median: float | None
    render_p90: float | None
    runs: int = 0  # invocations of `run` the running time is summed over
    elapsed_seconds: float | None = None  # from the first start to the last update
    # Each succeeded row's render time (``render_seconds``), for the report's histogram.
    render_times: list[float] = field(default_factory=list, repr=False, compare=False)


def render_seconds(records: Iterable[RowRecord]) -> list[float]:
    """How long each succeeded task took at the provider (finished_at - submitted_at), in sheet
    order, as summary.json counts them; rows without both times are left out."""
    return [
        (r.finished_at - r.submitted_at).total_seconds()
        for r in records
        if r.status is Status.SUCCEEDED and r.submitted_at is not None and r.finished_at is not None
    ]


def _number(value: Any, default: float = 0.0) -> float:
    return float(value) if isinstance(value, int | float) else default


def _optional(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _section(summary: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = summary.get(name)
    return value if isinstance(value, Mapping) else {}


def headline(
    records: Sequence[RowRecord],
    summary: Mapping[str, Any],
    counts_by_status: Mapping[Status, int] | None = None,
) -> Headline:
    """The headline figures: counts from the records (always current), money and times from the
    summary, render percentiles from the records when the summary has none. With
    ``counts_by_status`` (counted by the store), ``records`` may be just the rows to list."""
    counts = dict.fromkeys(STATUS_ORDER, 0)
    if counts_by_status is not None:
        counts.update(counts_by_status)
    else:
        counts.update(Counter(map(operator.attrgetter("status"), records)))
    cost = _section(summary, "cost")
    video = _section(summary, "video_seconds")
    timings = _section(summary, "timings")
    durations = render_seconds(records)
    # The summary's percentiles are the ones summary.json states; work them out only without it.
    if "render_seconds_median" in timings:
        median = _optional(timings["render_seconds_median"])
    else:
        median = statistics.median(durations) if durations else None
    if "render_seconds_p90" in timings:
        p90 = _optional(timings["render_seconds_p90"])
    else:
        p90 = percentile(durations, 0.9)
    by_resolution = video.get("by_resolution")
    return Headline(
        rows=sum(counts.values()),
        counts=counts,
        currency=str(cost.get("currency") or "USD"),
        estimated=_number(cost.get("estimated")),
        committed=_number(cost.get("committed")),
        spent=_number(cost.get("spent")),
        max_cost=_optional(cost.get("max_cost")),
        video_seconds=_number(video.get("total")),
        by_resolution=(
            {str(k): _number(v) for k, v in by_resolution.items()}
            if isinstance(by_resolution, Mapping)
            else {}
        ),
        started_at=_text(timings.get("started_at")),
        updated_at=_text(timings.get("updated_at")),
        wall_seconds=_optional(timings.get("wall_seconds")),
        render_median=median,
        render_p90=p90,
        runs=int(_number(timings.get("runs"))),
        elapsed_seconds=_optional(timings.get("elapsed_seconds")),
        render_times=durations,
    )


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def format_duration(seconds: float | None) -> str:
    """A span of time as a person reads it: ``42 s``, ``3m 07s``, ``2h 05m``; ``-`` for none."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    if whole < 60:
        return f"{seconds:.1f} s" if seconds < 10 and seconds != whole else f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def format_money(amount: float | None, currency: str = "USD") -> str:
    """An amount of money: ``$12.50`` in dollars, ``12.50 EUR`` otherwise; ``-`` for none."""
    if amount is None:
        return "-"
    return f"${amount:,.2f}" if currency == "USD" else f"{amount:,.2f} {currency}"


def format_when(iso: str | None) -> str:
    """An ISO 8601 time as ``2025-03-01 10:00:00 UTC`` (the text unchanged if it is not one)."""
    if not iso:
        return "-"
    try:
        when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    if when.utcoffset() == timedelta(0):
        return when.strftime("%Y-%m-%d %H:%M:%S UTC")
    return when.isoformat(sep=" ")


def one_line(text: str | None, width: int) -> str:
    """Text from a sheet or the provider made safe for a terminal: escape sequences, control
    characters and bidi overrides removed, line breaks become spaces, and long text is cut
    with ``...``."""
    flat = " ".join(clean(text or "", keep_newlines=False).split())
    if len(flat) <= width:
        return flat
    cut = flat[: max(width - 3, 0)]
    space = cut.rfind(" ")
    if space >= len(cut) - 15:  # end on a whole word when one ends near the limit
        cut = cut[:space]
    return cut + "..."


@dataclass(frozen=True)
class Attention:
    """One row that needs a person: why, in one line."""

    position: int
    row_id: str
    status: str
    reason: str


def needs_attention(records: Iterable[RowRecord], now: datetime) -> list[Attention]:
    """Rows that are invalid, duplicate, failed or unknown, pending with a reason (the budget,
    an unreachable provider, a missing file), or running longer than ``LONG_RUNNING``; in
    sheet order."""
    found: list[Attention] = []
    for r in records:
        if r.status in ATTENTION or (r.status is Status.PENDING and r.error):
            found.append(Attention(r.position, r.row_id, r.status.value, r.error or ""))
        elif r.status is Status.RUNNING and r.submitted_at is not None:
            age = now - r.submitted_at
            if age > LONG_RUNNING:
                reason = f"running for {format_duration(age.total_seconds())}"
                found.append(Attention(r.position, r.row_id, r.status.value, reason))
    return found


def resolution_order(by_resolution: Mapping[str, float]) -> list[tuple[str, float]]:
    """Resolutions from the smallest up (480P, 720P, 1080P), unknown names last."""

    def key(item: tuple[str, float]) -> tuple[int, str]:
        digits = item[0].rstrip("pP")
        return (int(digits) if digits.isdigit() else 1 << 30, item[0])

    return sorted(by_resolution.items(), key=key)


def _figure_lines(head: Headline) -> list[str]:
    cost = (
        f"estimated {format_money(head.estimated, head.currency)}"
        f", committed {format_money(head.committed, head.currency)}"
        f", spent {format_money(head.spent, head.currency)}"
    )
    if head.max_cost is not None:
        cost += f", max {format_money(head.max_cost, head.currency)}"
    video = f"{head.video_seconds:,.0f} s"
    if head.by_resolution:
        parts = ", ".join(
            f"{res} {secs:,.0f} s" for res, secs in resolution_order(head.by_resolution) if secs
        )
        video += f" ({parts})" if parts else ""
    render = f"median {format_duration(head.render_median)}, p90 {format_duration(head.render_p90)}"
    runs = f" over {head.runs} runs" if head.runs > 1 else ""
    return [
        f"  {'cost':<12}{cost}",
        f"  {'video':<12}{video}",
        f"  {'run time':<12}{format_duration(head.wall_seconds)}{runs}",
        f"  {'render':<12}{render}",
        f"  {'started':<12}{format_when(head.started_at)}",
        f"  {'updated':<12}{format_when(head.updated_at)}",
    ]


def every_row(records: Iterable[RowRecord]) -> list[Attention]:
    """Every row in sheet order, with its video file when it has one, else its error."""
    return [
        Attention(r.position, r.row_id, r.status.value, r.video_file or r.error or "")
        for r in records
    ]


def _attention_lines(
    rows: Sequence[Attention], cap: int, heading: str = "Needs attention", last: str = "error"
) -> list[str]:
    if not rows:
        return []
    shown = rows[:cap]
    ids = [one_line(a.row_id, 24) for a in shown]
    row_w = max(3, *(len(str(a.position)) for a in shown))
    id_w = max(2, *(len(i) for i in ids))
    status_w = max(len(a.status) for a in shown)
    lines = [
        "",
        f"{heading}: {len(rows)} row{'' if len(rows) == 1 else 's'}",
        f"  {'row':>{row_w}}  {'id':<{id_w}}  {'status':<{status_w}}  {last}",
    ]
    # The error takes what is left of a 100-column line, and never less than 30.
    error_w = max(30, LINE_WIDTH - (8 + row_w + id_w + status_w))
    for a, row_id in zip(shown, ids, strict=True):
        lines.append(
            f"  {a.position:>{row_w}}  {row_id:<{id_w}}  {a.status:<{status_w}}  "
            f"{one_line(a.reason, error_w)}".rstrip()
        )
    if len(rows) > cap:
        lines.append(f"  ... and {len(rows) - cap} more")
    return lines


def _breakdown_lines(
    records: Sequence[RowRecord],
    summary: Mapping[str, Any],
    group_by: Sequence[str],
    *,
    every_row: bool = True,
) -> list[str]:
    """The breakdown tables: from ``records`` when they are every row, else from the summary."""
    currency = str(_section(summary, "cost").get("currency") or "USD")

    def money(amount: float) -> str:
        return format_money(amount, currency)

    if every_row:
        models, resolutions = by_model(records), by_resolution(records)
        groups = by_columns(records, group_by) if group_by else []
    else:
        stored = stored_breakdowns(summary)
        models, resolutions, groups = (
            stored["by_model"], stored["by_resolution"], stored["by_group"]
        )  # fmt: skip
    lines = group_lines("model", models, money)
    lines += group_lines("resolution", resolutions, money)
    if group_by:
        lines += group_lines(", ".join(group_by), groups, money)
    runs = summary.get("runs")
    if isinstance(runs, list):
        lines += runs_lines(
            [r for r in runs if isinstance(r, Mapping)], format_when, format_duration
        )
    return lines


def render_status(
    title: str,
    records: Sequence[RowRecord],
    summary: Mapping[str, Any],
    *,
    now: datetime,
    cap: int = ATTENTION_CAP,
    all_rows: bool = False,
    group_by: Sequence[str] = (),
    counts: Mapping[Status, int] | None = None,
) -> str:
    """The text of `batchwan status`: counts, money, times, breakdowns by model, resolution and
    ``group_by``, the runs, then the rows that need attention (with ``all_rows``: every row,
    with its video or its error). With ``counts`` (counted by the store), ``records`` may be
    just the rows to list."""
    head = headline(records, summary, counts)
    lines = [one_line(title, 200), ""]
    count_w = max(5, len(f"{head.rows:,}"))
    lines.extend(
        f"  {status.value:<12}{count:>{count_w},}" for status, count in head.counts.items() if count
    )
    lines.append(f"  {'rows':<12}{head.rows:>{count_w},}")
    lines.append("")
    lines.extend(_figure_lines(head))
    lines.extend(_breakdown_lines(records, summary, group_by, every_row=counts is None))
    if all_rows:
        lines.extend(_attention_lines(every_row(records), len(records), "Rows", "video or error"))
    else:
        lines.extend(_attention_lines(needs_attention(records, now), cap))
    return "\n".join(lines) + "\n"


def load_status(
    run_dir: Path, *, all_rows: bool = False, group_by: Sequence[str] | None = None
) -> tuple[list[RowRecord], dict[Status, int], dict[str, str], dict[str, Any]]:
    """What `status` shows, without building a record per row when it can: the counts by SQL,
    records only of the rows it lists (every row with ``all_rows``), and the breakdowns from
    summary.json when it has those asked for."""
    counts = count_statuses(run_dir)
    listed = None if all_rows else ATTENTION | {Status.RUNNING}
    records = read_records(run_dir, listed)
    meta = read_meta(run_dir)
    columns = stored_group_by(meta) if group_by is None else tuple(group_by)
    summary = _stored_summary(run_dir)
    if summary is None or summary.get("group_by") != list(columns) or "breakdowns" not in summary:
        # Rare (no summary yet, or another --group-by): work it out from every row.
        return (records, counts, *load_run(run_dir, columns)[1:])
    return records, counts, meta, summary


def _stored_summary(run_dir: Path) -> dict[str, Any] | None:
    """summary.json as the run last wrote it; None when missing, half-written or damaged."""
    try:
        loaded = json.loads((run_dir / SUMMARY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def load_run(
    run_dir: Path, group_by: Sequence[str] | None = None
) -> tuple[list[RowRecord], dict[str, str], dict[str, Any]]:
    """A run folder's records, metadata and summary (summary.json, else worked out from the
    records), its breakdowns by ``group_by`` (default: the run's own); raises StateError when
    the folder holds no readable run."""
    records = read_records(run_dir)
    meta = read_meta(run_dir)
    summary = _stored_summary(run_dir)  # None: work it out again below
    columns = stored_group_by(meta) if group_by is None else tuple(group_by)
    if summary is None:
        summary = dict(summarize(records, meta, runs=_runs(run_dir), group_by=columns))
    elif summary.get("group_by") != list(columns) or "breakdowns" not in summary:
        fresh = summarize(records, meta, runs=_runs(run_dir), group_by=columns)
        summary.update(group_by=fresh["group_by"], breakdowns=fresh["breakdowns"])
        summary.setdefault("runs", fresh["runs"])
    return records, meta, summary


def _runs(run_dir: Path) -> list[RunLine]:
    try:
        return list(read_runs(run_dir))
    except (StateError, sqlite3.Error):  # a record from before runs were kept
        return []
