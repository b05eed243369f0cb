"""The tables of report.html drawn in Python: cost and status by group, and the runs."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from batchwan.outputs.groups import Group, by_columns, by_model, by_resolution, stored_breakdowns
from batchwan.outputs.statusview import format_duration, format_money, format_when
from batchwan.safe_text import clean
from batchwan.values import RowRecord, Status

GROUP_CAP = 200  # rows of one breakdown table; summary.json has them all


def _text(value: object) -> str:
    return html.escape(clean(value, keep_newlines=False))


def _group_table(name: str, title: str, columns: Sequence[str], groups: Sequence[Group]) -> str:
    head = "".join(f"<th>{_text(c)}</th>" for c in columns)
    head += "".join(
        f'<th class="num">{h}</th>'
        for h in ("Rows", "Succeeded", "Failed", "Other", "Video", "Estimated", "Spent")
    )
    body = []
    for g in groups[:GROUP_CAP]:
        other = g.rows - g.counts[Status.SUCCEEDED.value] - g.counts[Status.FAILED.value]
        keys = "".join(f"<td>{_text(k) or '<em>(blank)</em>'}</td>" for k in g.key)
        body.append(
            f"<tr>{keys}"
            f'<td class="num" data-v="{g.rows}">{g.rows:,}</td>'
            f'<td class="num" data-v="{g.counts["succeeded"]}">{g.counts["succeeded"]:,}</td>'
            f'<td class="num" data-v="{g.counts["failed"]}">{g.counts["failed"]:,}</td>'
            f'<td class="num" data-v="{other}">{other:,}</td>'
            f'<td class="num" data-v="{g.video_seconds}">{format_duration(g.video_seconds)}</td>'
            f'<td class="num" data-v="{g.estimated:.2f}">{format_money(g.estimated)}</td>'
            f'<td class="num" data-v="{g.spent:.2f}">{format_money(g.spent)}</td></tr>'
        )
    more = (
        f'<p class="muted">{len(groups) - GROUP_CAP:,} more groups in summary.json.</p>'
        if len(groups) > GROUP_CAP
        else ""
    )
    return (
        f'<h3>{_text(title)}</h3><div class="scroll"><table class="breakdown" '
        f'data-group="{html.escape(name)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>{more}"
    )


def group_tables(
    records: Sequence[RowRecord],
    group_by: Sequence[str],
    counted: Mapping[str, Any] | None = None,
) -> str:
    """Status, seconds and cost by the --group-by columns, by model and by resolution.

    ``counted``: a summary whose breakdowns were worked out from these very records by these
    columns; its groups are drawn instead of counting every row again (the tables show
    nothing that summary.json does not keep).
    """
    stored = counted.get("breakdowns") if counted is not None else None
    if stored is not None and counted is not None and counted.get("group_by") == list(group_by):
        groups = stored_breakdowns(counted)
        found_by_group, found_by_model = groups["by_group"], groups["by_model"]
        found_by_resolution = groups["by_resolution"]
    else:
        found_by_group = by_columns(records, group_by) if group_by else []
        found_by_model, found_by_resolution = by_model(records), by_resolution(records)
    parts = []
    if group_by:
        parts.append(
            _group_table("by_group", f"By {', '.join(group_by)}", group_by, found_by_group)
        )
    parts.append(_group_table("by_model", "By model", ["model"], found_by_model))
    parts.append(
        _group_table("by_resolution", "By resolution", ["resolution"], found_by_resolution)
    )
    return "".join(parts)


def runs_table(runs: Any) -> str:
    """One line per invocation of `run`: start, end, time spent, rows sent and collected."""
    entries = [r for r in runs if isinstance(r, Mapping)] if isinstance(runs, list) else []
    if not entries:
        return '<p class="muted">No run has been recorded yet.</p>'
    body = "".join(
        "<tr>"
        f'<td class="num">{_text(r.get("number"))}</td>'
        f"<td>{_text(format_when(r.get('started_at')))}</td>"
        f"<td>{_text(format_when(r.get('ended_at')) if r.get('ended_at') else 'not ended')}</td>"
        f'<td class="num">{_text(format_duration(r.get("seconds")))}</td>'
        f'<td class="num">{_text(r.get("sent", 0))}</td>'
        f'<td class="num">{_text(r.get("collected", 0))}</td></tr>'
        for r in entries
    )
    return (
        '<div class="scroll"><table class="runs"><thead><tr><th class="num">Run</th>'
        '<th>Started</th><th>Ended</th><th class="num">Time</th><th class="num">Sent</th>'
        f'<th class="num">Collected</th></tr></thead><tbody>{body}</tbody></table></div>'
    )
