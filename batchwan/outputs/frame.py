"""The run's rows as a typed pandas DataFrame: the columns of results.csv, as values, not text.

``row``, ``attempts``, ``duration``, ``seed`` and ``line`` are integers, ``status`` is
categorical (every status a category, in the order of ``Status``), ``submitted_at`` and
``finished_at`` are UTC timestamps, ``cost`` is a float; the other columns are pandas strings,
empty where results.csv has an empty cell. Cells are not formula-escaped: this is data for
code, not a file for a spreadsheet program.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pandas as pd

from batchwan.outputs.cells import Cell
from batchwan.outputs.results import typed_table
from batchwan.values import RowRecord, Status

#: The status column's type: every status, so counts and filters see empty ones too.
STATUS_DTYPE = pd.CategoricalDtype([status.value for status in Status], ordered=False)
TIME_DTYPE = "datetime64[ns, UTC]"
TEXT_DTYPE = pd.StringDtype()

#: Our columns that hold whole numbers (empty allowed), times and money; the rest are text.
_INTEGER_COLUMNS = frozenset({"row", "attempts", "duration", "seed", "line"})
_TIME_COLUMNS = frozenset({"submitted_at", "finished_at"})


def results_frame(records: Sequence[RowRecord], extra_columns: Sequence[str] = ()) -> pd.DataFrame:
    """One row per sheet row, in sheet order: results.csv's columns, typed."""
    header, rows = typed_table(records, extra_columns)
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in header]
    ours = len(header) - len(_own(records, extra_columns))
    data = {
        name: _typed(name, values, own=index >= ours)
        for index, (name, values) in enumerate(zip(header, columns, strict=True))
    }
    return pd.DataFrame(data, index=pd.RangeIndex(len(records)))


def _own(records: Sequence[RowRecord], extra_columns: Sequence[str]) -> list[str]:
    from batchwan.outputs.results import own_columns

    return own_columns(records, extra_columns)


def _typed(name: str, values: Sequence[Cell], *, own: bool) -> object:
    """One column as its pandas type (the sheet's own columns always stay text)."""
    if own:
        return pd.array([_text(v) for v in values], dtype=TEXT_DTYPE)
    if name == "status":
        return pd.Categorical(list(values), dtype=STATUS_DTYPE)
    if name == "cost":
        return pd.Series([_money(v) for v in values], dtype="float64")
    if name in _INTEGER_COLUMNS:
        return pd.array([_whole(v) for v in values], dtype="Int64")
    if name in _TIME_COLUMNS:
        return pd.Series([_moment(v) for v in values], dtype=TIME_DTYPE)
    return pd.array([_text(v) for v in values], dtype=TEXT_DTYPE)


def _money(value: Cell) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def _moment(value: Cell) -> pd.Timestamp | None:
    return pd.Timestamp(value) if isinstance(value, datetime) else None


def _whole(value: Cell) -> int | None:
    """A whole number, or None for an empty cell or one that is not a whole number."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value)
    return None


def _text(value: Cell) -> str | None:
    return None if value is None else str(value)
