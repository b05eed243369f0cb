"""A run's rows as built once at its end, shared by every file written from them.

results.csv, summary.json, report.html and results.xlsx all show the same rows; building them
once (and the summary once) instead of once per file, or re-reading them from state.db, is most
of what the end of a big run costs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchwan.values import RowRecord


@dataclass(frozen=True)
class RunView:
    """The rows, the record's metadata and the summary of a run, as written at its end."""

    run_dir: Path
    records: list[RowRecord]
    meta: dict[str, str]
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        """The sheet's own columns, as the run recorded them."""
        return list(json.loads(self.meta.get("columns") or "[]"))


def view_of(source: Path | RunView, group_by: Sequence[str] | None = None) -> RunView:
    """``source`` itself, or the run its folder holds, read from the record."""
    if isinstance(source, RunView):
        return source
    from batchwan.outputs.statusview import load_run  # reads state.db: only when asked to

    records, meta, summary = load_run(Path(source), group_by)
    return RunView(Path(source), records, meta, summary)
