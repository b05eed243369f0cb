"""The second tab of results.xlsx: the run's figures, its breakdowns and its runs."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

from batchwan.outputs.statusview import STATUS_ORDER

_TITLE = Font(bold=True, size=13)


def _when(value: Any) -> datetime | str | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _figures(summary: Mapping[str, Any]) -> list[tuple[str, Any, str]]:
    """(label, value, column kind) for the figures block."""
    cost = _mapping(summary.get("cost"))
    timings = _mapping(summary.get("timings"))
    counts = _mapping(summary.get("counts"))
    rows: list[tuple[str, Any, str]] = [
        ("sheet", summary.get("sheet"), ""),
        ("model", summary.get("model"), ""),
        ("rows", summary.get("rows"), ""),
    ]
    rows += [(s.value, counts.get(s.value, 0), "") for s in STATUS_ORDER]
    rows += [
        ("video seconds", _mapping(summary.get("video_seconds")).get("total"), ""),
        ("cost estimated", cost.get("estimated"), "cost"),
        ("cost committed", cost.get("committed"), "cost"),
        ("cost spent", cost.get("spent"), "cost"),
        ("max cost", cost.get("max_cost"), "cost"),
        ("first start (UTC)", _when(timings.get("started_at")), ""),
        ("last update (UTC)", _when(timings.get("updated_at")), ""),
        ("running seconds, all runs", timings.get("running_seconds"), ""),
        ("runs", timings.get("runs"), ""),
        ("render seconds median", timings.get("render_seconds_median"), ""),
        ("render seconds p90", timings.get("render_seconds_p90"), ""),
    ]
    return rows


def _group_rows(title: str, groups: Sequence[Mapping[str, Any]], names: Sequence[str]) -> list[Any]:
    header = [*names, "rows", "succeeded", "failed", "video seconds", "estimated", "spent"]
    out: list[Any] = [[title], header]
    for g in groups:
        key = _mapping(g.get("key"))
        counts = _mapping(g.get("counts"))
        cost = _mapping(g.get("cost"))
        out.append(
            [
                *(str(key.get(n, "")) for n in names),
                g.get("rows"),
                counts.get("succeeded", 0),
                counts.get("failed", 0),
                g.get("video_seconds"),
                ("cost", cost.get("estimated")),
                ("cost", cost.get("spent")),
            ]
        )
    out.append([])
    return out


def summary_sheet(
    book: Workbook, summary: Mapping[str, Any], make_cell: Callable[..., Any], bold: Font
) -> None:
    """Add the "summary" tab: figures, then a table per breakdown, then one line per run."""
    sheet = book.create_sheet("summary")
    sheet.column_dimensions["A"].width = 28
    for letter in "BCDEFGH":
        sheet.column_dimensions[letter].width = 16
    for label, value, kind in _figures(summary):
        name = make_cell(sheet, "", label)
        name.font = bold
        sheet.append([name, make_cell(sheet, kind, value)])
    sheet.append([])
    breakdowns = _mapping(summary.get("breakdowns"))
    tables = [
        ("By model", breakdowns.get("by_model") or [], ["model"]),
        ("By resolution", breakdowns.get("by_resolution") or [], ["resolution"]),
    ]
    by_group = _mapping(breakdowns.get("by_group"))
    columns = [str(c) for c in by_group.get("columns") or []]
    if columns:
        tables.append((f"By {', '.join(columns)}", by_group.get("groups") or [], columns))
    for title, groups, names in tables:
        for i, row in enumerate(_group_rows(title, groups, names)):
            cells = []
            for value in row:
                kind, value = value if isinstance(value, tuple) else ("", value)
                cell = make_cell(sheet, kind, value)
                if i < 2:
                    cell.font = _TITLE if i == 0 else bold
                cells.append(cell)
            sheet.append(cells)
    runs = summary.get("runs") or []
    sheet.append([make_cell(sheet, "", "Runs")])
    header = ["run", "started (UTC)", "ended (UTC)", "seconds", "sent", "collected"]
    sheet.append([make_cell(sheet, "", h) for h in header])
    for run in runs:
        run = _mapping(run)
        values = [run.get("number"), _when(run.get("started_at")), _when(run.get("ended_at")),
                  run.get("seconds"), run.get("sent"), run.get("collected")]  # fmt: skip
        sheet.append([make_cell(sheet, "", v) for v in values])
