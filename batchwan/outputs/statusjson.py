"""`batchwan status --json`: the content of `status` as one JSON document with stable keys."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from batchwan.outputs.groups import breakdowns
from batchwan.outputs.statusview import STATUS_ORDER, headline, needs_attention
from batchwan.values import RowRecord, Status

#: Raised when a key is renamed or removed; new keys may be added without raising it.
SCHEMA_VERSION = 1


def _row(r: RowRecord) -> dict[str, Any]:
    return {
        "row": r.position,
        "id": r.row_id,
        "status": r.status.value,
        "video_file": r.video_file,
        "error": r.error,
        "model": r.model,
        "resolution": r.resolution,
        "duration": r.duration,
        "cost": round(r.cost, 4),
        "line": r.line,
    }


def status_document(
    run_dir: str,
    records: Sequence[RowRecord],
    meta: Mapping[str, str],
    summary: Mapping[str, Any],
    *,
    now: datetime,
    group_by: Sequence[str] = (),
    all_rows: bool = False,
    counts: Mapping[Status, int] | None = None,
) -> dict[str, Any]:
    """What `status` shows, as data: counts, money, times, runs, breakdowns, attention rows
    (and with ``all_rows`` every row). With ``counts`` (counted by the store), ``records`` may
    be just the rows to list."""
    head = headline(records, summary, counts)
    timings = summary.get("timings")
    timings = timings if isinstance(timings, Mapping) else {}
    runs = summary.get("runs")
    return {
        "schema": SCHEMA_VERSION,
        "run_dir": run_dir,
        "sheet": meta.get("sheet") or None,
        "model": meta.get("model") or None,
        "rows": head.rows,
        "counts": {s.value: head.counts[s] for s in STATUS_ORDER},
        "all_succeeded": all(n == 0 or s is Status.SUCCEEDED for s, n in head.counts.items()),
        "cost": {
            "currency": head.currency,
            "estimated": head.estimated,
            "committed": head.committed,
            "spent": head.spent,
            "max_cost": head.max_cost,
        },
        "video_seconds": {"total": head.video_seconds, "by_resolution": head.by_resolution},
        "timings": {
            "started_at": head.started_at,
            "updated_at": head.updated_at,
            "running_seconds": head.wall_seconds,
            "elapsed_seconds": head.elapsed_seconds,
            "runs": head.runs,
            "render_seconds_median": head.render_median,
            "render_seconds_p90": head.render_p90,
            "last_run_started_at": timings.get("last_run_started_at"),
        },
        "runs": [dict(r) for r in runs if isinstance(r, Mapping)] if isinstance(runs, list) else [],
        "group_by": list(group_by),
        "breakdowns": breakdowns(records, group_by),
        "attention": [
            {"row": a.position, "id": a.row_id, "status": a.status, "reason": a.reason}
            for a in needs_attention(records, now)
        ],
        "rows_detail": [_row(r) for r in records] if all_rows else None,
    }
