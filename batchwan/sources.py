"""What a run reads: a sheet or job file on disk, a pandas DataFrame, or a list of mappings.

Every kind becomes the same two values, a ``JobSpec`` and a ``Sheet``, so the stages after this
one never know where the rows came from. A table given in memory has no folder of its own: its
local image paths are relative to ``image_root`` (default: the current directory), and the run
folder must be named.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import math
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from batchwan.errors import InputError
from batchwan.sheet.loader import Sheet, SheetStream, cell_text
from batchwan.values import CheckedRow, JobSpec, SheetRow

#: What ``Sheet.path`` is called for a table given in memory (a name no file has).
IN_MEMORY_NAME = "<rows>"


def is_table(source: object) -> bool:
    """True for a table given in memory (a DataFrame or a list of mappings), not a path."""
    return not isinstance(source, str | Path)


def load_spec(
    source: Any, overrides: Mapping[str, Any], *, needs_out: bool = True
) -> tuple[JobSpec, Sheet | None]:
    """The job spec with ``overrides`` applied (None values left out), and an in-memory sheet.

    For a path the sheet is read later, by ``read_rows``; for a table it is built here. A table
    needs ``out`` unless nothing will be written (``needs_out=False``: validation).
    """
    given = {name: value for name, value in overrides.items() if value is not None}
    if not is_table(source):
        from batchwan.sheet.jobfile import load_source

        return dataclasses.replace(load_source(Path(source)), **given), None
    if needs_out and given.get("out") is None:
        raise InputError("a DataFrame or a list of rows needs out=: the run folder to write")
    root = Path(given.get("image_root") or Path.cwd())
    sheet = table_sheet(source, root / IN_MEMORY_NAME)
    return JobSpec(sheet=sheet.path, **given), sheet


def table_sheet(source: Any, path: Path) -> Sheet:
    """A DataFrame or a list of mappings as a Sheet whose cells are the text a person would type."""
    if _is_frame(source):
        columns = [str(name) for name in source.columns]
        records: Sequence[Mapping[Any, Any]] = source.to_dict(orient="records")
        records = [dict(zip(columns, r.values(), strict=True)) for r in records]
    elif isinstance(source, Sequence) and not isinstance(source, bytes | bytearray):
        records = list(source)
        columns = []
        for number, record in enumerate(records, start=1):
            if not isinstance(record, Mapping):
                raise InputError(
                    f"row {number}: is a {type(record).__name__}, not a mapping of column -> value"
                )
            columns.extend(str(k) for k in record if str(k) not in columns)
    else:
        raise InputError(
            f"cannot read a {type(source).__name__} as a sheet: give a path, "
            "a pandas DataFrame or a list of mappings"
        )
    if len(set(columns)) != len(columns):
        twice = next(c for c in columns if columns.count(c) > 1)
        raise InputError(f"column {twice!r} appears twice; rename one")
    rows = [
        SheetRow(position, {str(k): _cell(v) for k, v in record.items()})
        for position, record in enumerate(records, start=1)
    ]
    return Sheet(path=path, columns=tuple(columns), rows=rows)


def _is_frame(source: object) -> bool:
    # Checked by name so that a list source never pays for importing pandas.
    return type(source).__name__ == "DataFrame" and hasattr(source, "to_dict")


def _cell(value: Any) -> str:
    """A cell as typed: an empty (NaN, None, NA) cell is empty; 5.0 in a number column is 5."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer():  # pandas turns an int column with a gap into floats
            return str(int(value))
    if type(value).__name__ in ("NAType", "NaTType"):
        return ""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # numpy scalars
        return _cell(value.item())
    return cell_text(value)


def read_rows(spec: JobSpec, sheet: Sheet | None) -> Sheet:
    """The sheet to check: the one given in memory, else the one ``spec`` names on disk."""
    if sheet is not None:
        return sheet
    from batchwan.sheet.loader import read_spec_sheet

    return read_spec_sheet(spec)


def open_rows(spec: JobSpec, sheet: Sheet | None) -> Sheet | SheetStream:
    """``read_rows``, but a CSV or TSV on disk is read as its rows are taken."""
    if sheet is not None:
        return sheet
    from batchwan.sheet.loader import open_spec_sheet

    return open_spec_sheet(spec)


def check_each(
    spec: JobSpec, sheet: Sheet | SheetStream, fix_dir: Path | None
) -> Iterator[CheckedRow]:
    """``check`` one row at a time (the sheet-wide checks are made at once)."""
    from batchwan.checks.validation import iter_checked

    root = spec.image_root if sheet.path.name != IN_MEMORY_NAME else None
    return iter_checked(sheet, spec, image_root=root, fix_dir=fix_dir)


def check(spec: JobSpec, sheet: Sheet, fix_dir: Path | None) -> list[CheckedRow]:
    """Every row checked; fixable images fixed into ``fix_dir`` when given."""
    from batchwan.checks.validation import check_rows

    root = spec.image_root if sheet.path.name != IN_MEMORY_NAME else None
    return check_rows(sheet, spec, image_root=root, fix_dir=fix_dir)


@contextlib.contextmanager
def scratch_fix_dir() -> Iterator[Path]:
    """A folder for fixed images that is removed afterwards (a dry run writes nothing)."""
    with tempfile.TemporaryDirectory(prefix="batchwan-fix-") as folder:
        yield Path(folder)


def own_columns(spec: JobSpec, sheet: Sheet | SheetStream) -> tuple[list[str], tuple[str, ...]]:
    """The user's own columns in sheet order (every column not read as a field), and what was
    guessed in reading the sheet and its headers (`Image URL` is the image, not the user's)."""
    from batchwan.checks.validation import layout

    columns = layout(sheet, spec)
    return list(columns.extra), (*sheet.notes, *columns.notes)
