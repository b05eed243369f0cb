"""The run's rows as a typed pandas DataFrame: the columns of results.csv, as values, not text.

``row`` and ``attempts`` are integers, ``status`` is categorical (every status a category, in
the order of ``Status``), ``submitted_at`` and ``finished_at`` are UTC timestamps, ``cost`` is a
float; text columns are pandas strings, empty where results.csv has an empty cell. Cells are
not formula-escaped: this is data for code, not a file for a spreadsheet program.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pandas as pd

from batchwan.outputs.results import LEADING_COLUMNS
from batchwan.values import RowRecord, Status

#: The status column's type: every status, so counts and filters see empty ones too.
STATUS_DTYPE = pd.CategoricalDtype([status.value for status in Status], ordered=False)
TIME_DTYPE = "datetime64[ns, UTC]"
TEXT_DTYPE = pd.StringDtype()


def _time(value: datetime | None) -> pd.Timestamp | None:
    return pd.Timestamp(value) if value is not None else None


def results_frame(records: Sequence[RowRecord], extra_columns: Sequence[str] = ()) -> pd.DataFrame:
    """One row per sheet row, in sheet order, with the user's own columns after ours."""
    columns = list(extra_columns)
    for record in records:  # columns the caller did not name still come along, in first-seen order
        columns.extend(name for name in record.extra if name not in columns)
    data: dict[str, object] = {
        "row": pd.array([r.position for r in records], dtype="Int64"),
        "id": pd.array([r.row_id for r in records], dtype=TEXT_DTYPE),
        "status": pd.Categorical([r.status.value for r in records], dtype=STATUS_DTYPE),
        "task_id": pd.array([r.task_id for r in records], dtype=TEXT_DTYPE),
        "video_url": pd.array([r.video_url for r in records], dtype=TEXT_DTYPE),
        "video_file": pd.array([r.video_file for r in records], dtype=TEXT_DTYPE),
        "error": pd.array([r.error for r in records], dtype=TEXT_DTYPE),
        "attempts": pd.array([r.attempts for r in records], dtype="Int64"),
        "submitted_at": pd.Series([_time(r.submitted_at) for r in records], dtype=TIME_DTYPE),
        "finished_at": pd.Series([_time(r.finished_at) for r in records], dtype=TIME_DTYPE),
        "cost": pd.array([float(r.cost) for r in records], dtype="float64"),
    }
    frame = pd.DataFrame({name: _values(value) for name, value in data.items()})
    frame = frame[list(LEADING_COLUMNS)]
    for name in columns:
        if name in frame.columns:  # a user column named like one of ours: ours wins
            continue
        frame[name] = pd.array([r.extra.get(name, "") for r in records], dtype=TEXT_DTYPE)
    return frame


def _values(value: object) -> object:
    # A Series built above carries a RangeIndex already; arrays are aligned on the same one.
    return value.array if isinstance(value, pd.Series) else value
