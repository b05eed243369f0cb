"""The sections of report.html drawn in Python: headline cards, charts, the errors by cause,
and the status filter chips. Every text from the sheet or the provider is escaped."""

from __future__ import annotations

import html
from collections.abc import Sequence

from batchwan.outputs.causes import ErrorGroup
from batchwan.outputs.report_charts import Bar, Series, bar_chart, cumulative_chart, histogram
from batchwan.outputs.statusview import (
    STATUS_COLOURS,
    Headline,
    format_duration,
    format_money,
    format_when,
    resolution_order,
)
from batchwan.safe_text import clean
from batchwan.values import RowRecord, Status


def status_css() -> str:
    """One class per status, in the colours results.xlsx uses too."""
    return "".join(
        f".s-{s.value}{{background:{c.pale};color:{c.strong}}}" for s, c in STATUS_COLOURS.items()
    )


def _card(label: str, value: str, note: str = "") -> str:
    note_html = f'<div class="note">{html.escape(note)}</div>' if note else ""
    return (
        f'<div class="card"><div class="label">{html.escape(label)}</div>'
        f'<div class="value">{html.escape(value)}</div>{note_html}</div>'
    )


def cards(head: Headline) -> str:
    """The headline figures as cards."""
    ok = head.counts[Status.SUCCEEDED]
    attention = sum(head.counts[s] for s in (Status.FAILED, Status.UNKNOWN, Status.INVALID))
    attention += head.counts[Status.DUPLICATE]
    open_rows = head.counts[Status.RUNNING] + head.counts[Status.PENDING]
    share = f"{ok / head.rows:.0%} of rows" if head.rows else ""
    cost_note = f"estimated {format_money(head.estimated, head.currency)}"
    if head.max_cost is not None:
        cost_note += f", cap {format_money(head.max_cost, head.currency)}"
    resolutions = ", ".join(
        f"{k} {format_duration(v)}" for k, v in resolution_order(head.by_resolution) if v
    )
    return (
        '<section class="cards" aria-label="Headline figures">'
        + _card("Rows", f"{head.rows:,}", f"{open_rows:,} still open" if open_rows else "")
        + _card("Succeeded", f"{ok:,}", share)
        + _card("Need attention", f"{attention:,}", "failed, unknown, invalid, duplicate")
        + _card("Spent", format_money(head.spent, head.currency), cost_note)
        + _card("Video", format_duration(head.video_seconds), resolutions)
        + _card("Run time", format_duration(head.wall_seconds), _runs_note(head))
        + _card("Render median", format_duration(head.render_median), "submit to finish")
        + _card("Render p90", format_duration(head.render_p90), "9 in 10 took at most")
        + "</section>"
    )


def _runs_note(head: Headline) -> str:
    runs = f"summed over {head.runs} runs; " if head.runs > 1 else ""
    return f"{runs}first start {format_when(head.started_at)}"


def charts(records: Sequence[RowRecord], head: Headline, groups: Sequence[ErrorGroup]) -> str:
    """The four charts: status, render times, finished over time, errors by cause."""
    status_bars = [Bar(s.value, n, STATUS_COLOURS[s].strong) for s, n in head.counts.items() if n]
    finished = [r for r in records if r.finished_at is not None and r.submitted_at is not None]
    start = min((r.submitted_at for r in records if r.submitted_at), default=None)
    series: list[Series] = []
    span = 0.0
    if start is not None:
        for status in (Status.SUCCEEDED, Status.FAILED):
            times = [
                (r.finished_at - start).total_seconds()
                for r in finished
                if r.status is status and r.finished_at
            ]
            series.append(Series(status.value, times, STATUS_COLOURS[status].strong))
            span = max([span, *times])
    error_bars = [
        Bar(
            clean(g.reason),
            len(g.positions),
            STATUS_COLOURS[_main_status(g)].strong,
            clean(g.example),
        )
        for g in groups[:10]
    ]
    if len(groups) > 10:
        rest = sum(len(g.positions) for g in groups[10:])
        error_bars.append(Bar(f"{len(groups) - 10} other reasons", rest, "#8c959f"))
    panels = [
        ("Rows by status", bar_chart(status_bars, label="Rows by status", label_chars=12)),
        (
            "Render time of succeeded rows",
            histogram(
                head.render_times,
                label="Render time distribution",
                colour="#3b6ea8",
                markers=[("median", head.render_median), ("p90", head.render_p90)],
            ),
        ),
        (
            "Tasks finished over time",
            cumulative_chart(series, label="Tasks finished over time", span=span),
        ),
        (
            "Errors by cause",
            bar_chart(error_bars, label="Errors by cause", label_chars=40, empty="No errors"),
        ),
    ]
    return (
        '<section class="charts" id="charts">'
        + "".join(
            f'<div class="panel"><h3>{html.escape(title)}</h3>{svg}</div>' for title, svg in panels
        )
        + "</section>"
    )


def _main_status(group: ErrorGroup) -> Status:
    return Status(group.statuses.most_common(1)[0][0])


def _positions_text(positions: Sequence[int], shown: int = 12) -> str:
    text = ", ".join(str(p) for p in positions[:shown])
    return text + (f" \u2026 and {len(positions) - shown:,} more" if len(positions) > shown else "")


def error_table(groups: Sequence[ErrorGroup]) -> str:
    """The errors grouped by cause, largest first, with an example and the rows."""
    if not groups:
        return '<p class="muted">No errors.</p>'
    body = "".join(
        "<tr>"
        f'<td class="num">{len(g.positions):,}</td>'
        f'<td class="reason">{html.escape(clean(g.reason))}'
        f'<div class="example">e.g. {html.escape(clean(g.example)[:400])}</div></td>'
        "<td>"
        + " ".join(
            f'<span class="badge s-{html.escape(s)}">{html.escape(s)} {n:,}</span>'
            for s, n in g.statuses.most_common()
        )
        + f"</td><td>{html.escape(_positions_text(g.positions))}</td></tr>"
        for g in groups[:30]
    )
    more = (
        f'<p class="muted">{len(groups) - 30:,} more reasons; the row table lists every row.</p>'
        if len(groups) > 30
        else ""
    )
    return (
        '<div class="scroll"><table class="groups"><thead><tr><th class="num">Rows</th>'
        "<th>Cause</th><th>Status</th><th>Rows (sheet position)</th></tr></thead>"
        f"<tbody>{body}</tbody></table></div>{more}"
    )


def chips(head: Headline) -> str:
    """The status filter buttons of the row table."""
    chips = [
        '<button type="button" class="chip" data-status="all" aria-pressed="true">'
        f'All<span class="n">{head.rows:,}</span></button>'
    ]
    chips.extend(
        f'<button type="button" class="chip" data-status="{s.value}" aria-pressed="false">'
        f'{s.value}<span class="n">{n:,}</span></button>'
        for s, n in head.counts.items()
        if n
    )
    return "".join(chips)
