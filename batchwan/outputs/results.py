"""results.csv and summary.json, built from the run's record and replaced whole each time."""

from __future__ import annotations

import csv
import json
import math
import statistics
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from batchwan.atomic import atomic_writer, write_text_atomic
from batchwan.values import COMMITTED, RowRecord, Status

RESULTS_FILE = "results.csv"
SUMMARY_FILE = "summary.json"

LEADING_COLUMNS: tuple[str, ...] = (
    "row",
    "id",
    "status",
    "task_id",
    "video_url",
    "video_file",
    "error",
    "attempts",
    "submitted_at",
    "finished_at",
    "cost",
)

# A spreadsheet program runs a cell starting with one of these as a formula.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def as_text_cell(value: str) -> str:
    """Make a cell that a spreadsheet would run as a formula show as text instead."""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def _time(value: datetime | None) -> str:
    return value.isoformat().replace("+00:00", "Z") if value else ""


def results_table(
    records: Sequence[RowRecord], extra_columns: Sequence[str] = ()
) -> tuple[list[str], list[list[str]]]:
    """The header and rows of results.csv, every cell safe to open in a spreadsheet."""
    columns = list(extra_columns)
    for record in records:  # columns the caller did not name still get written, in first-seen order
        columns.extend(name for name in record.extra if name not in columns)
    header = [*LEADING_COLUMNS, *columns]
    rows = []
    for r in records:
        cells = [
            str(r.position),
            r.row_id,
            r.status.value,
            r.task_id or "",
            r.video_url or "",
            r.video_file or "",
            r.error or "",
            str(r.attempts),
            _time(r.submitted_at),
            _time(r.finished_at),
            f"{r.cost:.2f}",
            *(r.extra.get(name, "") for name in columns),
        ]
        rows.append([as_text_cell(cell) for cell in cells])
    return header, rows


def write_results_csv(
    run_dir: Path, records: Sequence[RowRecord], extra_columns: Sequence[str] = ()
) -> Path:
    """Replace results.csv in one step."""
    header, rows = results_table(records, extra_columns)
    path = run_dir / RESULTS_FILE
    with atomic_writer(path, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The ``fraction`` quantile by linear interpolation between the closest ranks (as numpy's
    default and spreadsheets' PERCENTILE do); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = fraction * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(records: Sequence[RowRecord], meta: Mapping[str, str]) -> dict[str, Any]:
    """The content of summary.json: counts, video seconds, cost and timings."""
    counts = {status.value: 0 for status in Status}
    by_resolution: dict[str, int] = {}
    estimated = committed = spent = 0.0
    renders: list[float] = []
    for r in records:
        counts[r.status.value] += 1
        if r.status in (Status.INVALID, Status.DUPLICATE):
            continue
        by_resolution[r.resolution] = by_resolution.get(r.resolution, 0) + r.duration
        estimated += r.cost
        if r.status in COMMITTED:
            committed += r.cost
        if r.status is Status.SUCCEEDED:
            spent += r.cost
            if r.submitted_at and r.finished_at:
                renders.append((r.finished_at - r.submitted_at).total_seconds())
    # Wall time is this run's (cron reruns would otherwise count the idle hours between them).
    started = meta.get("run_started_at") or meta.get("started_at")
    updated = meta.get("updated_at") or started
    wall = None
    if started and updated:
        wall = (datetime.fromisoformat(updated) - datetime.fromisoformat(started)).total_seconds()
    max_cost = meta.get("max_cost")
    return {
        "sheet": meta.get("sheet"),
        "model": meta.get("model"),
        "rows": len(records),
        "counts": counts,
        "video_seconds": {"total": sum(by_resolution.values()), "by_resolution": by_resolution},
        "cost": {
            "currency": "USD",
            "estimated": round(estimated, 2),
            "committed": round(committed, 2),
            "spent": round(spent, 2),
            "max_cost": float(max_cost) if max_cost else None,
        },
        "timings": {
            "started_at": started,
            "updated_at": updated,
            "wall_seconds": wall,
            "render_seconds_median": statistics.median(renders) if renders else None,
            "render_seconds_p90": percentile(renders, 0.9),
        },
    }


def write_summary(run_dir: Path, summary: Mapping[str, Any]) -> Path:
    """Replace summary.json in one step."""
    path = run_dir / SUMMARY_FILE
    write_text_atomic(path, json.dumps(summary, indent=2) + "\n")
    return path
