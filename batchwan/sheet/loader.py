"""Read any sheet format into rows that remember their position, cells as the user typed them.

Formats: CSV, TSV, XLSX, JSONL and YAML (a list of mappings, or a mapping with ``rows:`` and an
optional ``defaults:``). Encodings and separators: ``sheet.textread``; workbooks (tabs, links,
merged cells, hidden rows): ``sheet.workbook``; a CSV's or workbook's records into rows (the
header, blank rows, unnamed columns): ``sheet.rows``.

Choices a user can rely on:

* Cells stay text exactly as typed: no float seeds, no ``NaN`` for an empty cell, leading zeros
  kept. YAML and JSON scalars become the text a person would write (``true``, ``5``, ``5.0``;
  null is empty). YAML sheets are read without YAML 1.1's guessing, so ``seed: 0123`` stays
  ``0123`` rather than becoming the octal number 83.
* In CSV, TSV and XLSX a row whose every cell is blank is skipped and takes no position: exports
  from spreadsheet programs often end in rows of bare commas, and reporting each as a row with
  no prompt helps nobody. Every other row keeps its position among the data rows, starting at 1.
  In JSONL a blank line is skipped; in YAML every list item is a row.
* The header is the first row that names a field (``prompt``, ``Image URL``...) among the first
  20 non-blank rows, so title rows above it are skipped (and said); when no row names a field,
  the first non-blank row is the header.
* Each row knows its ``line``: the number the spreadsheet program shows for it (in a CSV the
  record's number counting the header, title and blank rows, which is its line number unless a
  cell above spans lines; in a workbook its row number; in JSONL its line; in YAML the line where
  its item starts).
* A line that cannot be parsed (a JSONL line that is not a JSON object, a CSV row with more cells
  than the header) is a problem of that row only: ``SheetRow.read_error``.
* A file that cannot be read at all raises one ``InputError`` naming the file and the reason.
* ``read_sheet`` holds every row; ``open_sheet`` gives a CSV or TSV as a ``SheetStream`` whose
  rows are read as they are taken (the same rows), so a million of them need not fit at once.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from batchwan.collector import collector_paused
from batchwan.errors import InputError
from batchwan.sheet import textread
from batchwan.sheet.rows import RowStream as RowStream  # re-exported: what a read gives
from batchwan.sheet.rows import Sheet as Sheet
from batchwan.sheet.rows import SheetStream as SheetStream
from batchwan.sheet.rows import (
    assemble,
    collect,
    find_header,
    has_header,
    sheet_rows,
)
from batchwan.sheet.textread import (
    TOO_LONG,
    bounded_lines,
    detect_encoding,
    read_records,
    text_format,
)
from batchwan.sheet.yamltext import parse_yaml
from batchwan.values import JobSpec, SheetRow

log = logging.getLogger(__name__)

#: The extensions ``read_sheet`` understands.
SHEET_SUFFIXES: tuple[str, ...] = (".csv", ".tsv", ".xlsx", ".jsonl", ".yaml", ".yml")

#: The largest YAML sheet or job file: YAML is parsed whole, and its values walked.
MAX_YAML_BYTES = 64 * 1024 * 1024


def read_sheet(
    path: Path,
    *,
    tab: str | None = None,
    include_hidden: bool = False,
    encoding: str | None = None,
    delimiter: str | None = None,
    columns: Iterable[str] = (),
) -> Sheet:
    """Read a CSV, TSV, XLSX, JSONL or YAML sheet; InputError when it cannot be read at all.

    ``tab`` picks a workbook's tab; ``include_hidden`` reads its hidden rows too; ``encoding``
    and ``delimiter`` force what is otherwise found (see ``sheet.textread``); ``columns``
    are header names a job file maps, which mark the header row as field names do.
    """
    names = frozenset(columns)
    suffix = _readable_suffix(path, tab)
    if suffix == ".xlsx":
        return _read_xlsx(path, tab, include_hidden, names)
    if suffix in (".csv", ".tsv"):
        fmt = _text_format(path, suffix, encoding, delimiter)
        return assemble(path, read_records(path, fmt), "line", fmt.notes, names=names)
    if suffix == ".jsonl":
        return _read_jsonl(path, encoding)
    return _read_yaml(path, read_text(path, encoding))


def open_sheet(
    path: Path,
    *,
    tab: str | None = None,
    include_hidden: bool = False,
    encoding: str | None = None,
    delimiter: str | None = None,
    columns: Iterable[str] = (),
) -> Sheet | SheetStream:
    """``read_sheet``, but a CSV or TSV comes as a stream of rows read one at a time.

    Other formats, and a CSV whose header has blank cells (an unnamed column is dropped when
    no row fills it, which only a full pass can tell), are read whole, as ``read_sheet`` does.
    """
    names = frozenset(columns)
    suffix = _readable_suffix(path, tab)
    if suffix not in (".csv", ".tsv"):
        return read_sheet(path, tab=tab, include_hidden=include_hidden, encoding=encoding,
                          delimiter=delimiter, columns=names)  # fmt: skip
    fmt = _text_format(path, suffix, encoding, delimiter)
    records = read_records(path, fmt)
    header = find_header(path, records, "line", names)
    if header.unnamed_at:
        with collector_paused():
            return collect(path, header, records, fmt.notes, frozenset())
    rows = sheet_rows(records, header, frozenset(), [], set(), None)
    notes = (*fmt.notes, *header.notes)
    return SheetStream(path, tuple(header.columns), RowStream(rows), notes)


def _readable_suffix(path: Path, tab: str | None) -> str:
    """The sheet's lower-case suffix, once it is known to be one ``read_sheet`` reads."""
    suffix = path.suffix.lower()
    if path.is_dir():  # before the suffix: "a file without an extension" would mislead
        raise InputError(f"{path}: is a folder, not a sheet; name the sheet file inside it")
    if suffix not in SHEET_SUFFIXES:
        kind = f"a {suffix} file" if suffix else "a file without an extension"
        hint = (
            " (Excel's Unicode Text is tab-separated: rename it to .tsv)"
            if suffix == ".txt"
            else ""
        )
        raise InputError(
            f"{path}: cannot read {kind} as a sheet; use one of {', '.join(SHEET_SUFFIXES)}{hint}"
        )
    if tab is not None and suffix != ".xlsx":
        raise InputError(f"{path}: --tab {tab!r} is for .xlsx workbooks; this sheet has no tabs")
    return suffix


def _text_format(
    path: Path, suffix: str, encoding: str | None, delimiter: str | None
) -> textread.TextFormat:
    default = "\t" if suffix == ".tsv" else ","
    return text_format(path, encoding=encoding, delimiter=delimiter, default=default)


def read_spec_sheet(spec: JobSpec) -> Sheet:
    """Read the sheet of a job spec, with its tab, encoding, separator and column names."""
    return read_sheet(
        spec.sheet,
        tab=spec.tab,
        include_hidden=spec.include_hidden,
        encoding=spec.encoding,
        delimiter=spec.delimiter,
        columns=spec.columns.values(),
    )


def open_spec_sheet(spec: JobSpec) -> Sheet | SheetStream:
    """``open_sheet`` of a job spec's sheet: a CSV or TSV streamed, other formats read whole."""
    return open_sheet(
        spec.sheet,
        tab=spec.tab,
        include_hidden=spec.include_hidden,
        encoding=spec.encoding,
        delimiter=spec.delimiter,
        columns=spec.columns.values(),
    )


def cell_text(value: Any) -> str:
    """The text a person would have typed for a YAML/JSON/XLSX value (null is empty)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        return str(value)


def read_text(path: Path, encoding: str | None = None) -> str:
    """A YAML file's text, in its encoding (found as for CSV); InputError naming the reason."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    if size > MAX_YAML_BYTES:
        raise InputError(
            f"{path}: is {size / 1e6:.0f} MB; a YAML file may be at most "
            f"{MAX_YAML_BYTES / 1e6:.0f} MB (use CSV or JSONL for big sheets)"
        )
    if encoding is None:
        encoding, _note = detect_encoding(path)
    try:
        return path.read_bytes().decode(encoding)
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not a sheet") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: cannot be read as {encoding} (byte 0x{exc.object[exc.start]:02x} at "
            f"offset {exc.start}); save it as UTF-8"
        ) from None


def _read_xlsx(path: Path, tab: str | None, include_hidden: bool, names: frozenset[str]) -> Sheet:
    from batchwan.sheet.workbook import open_workbook

    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        book = open_workbook(path, tab=tab, include_hidden=include_hidden, has_header=has_header)
        hidden = frozenset() if include_hidden else book.hidden
        return assemble(path, book.records, "row", book.notes, hidden, names)
    except InputError:
        raise
    except Exception as exc:  # openpyxl raises many unrelated types on a damaged workbook
        raise InputError(f"{path}: cannot be read as an XLSX workbook: {exc}") from None


def _columns_of(records: Iterable[dict[str, str]]) -> tuple[str, ...]:
    order: dict[str, None] = {}
    for cells in records:
        for key in cells:
            order.setdefault(key, None)
    return tuple(order)


def _mapping_cells(value: dict[Any, Any]) -> dict[str, str]:
    return {cell_text(k).strip(): cell_text(v) for k, v in value.items()}


def _read_jsonl(path: Path, encoding: str | None) -> Sheet:
    rows: list[SheetRow] = []
    position = 0
    if encoding is None:
        encoding, _note = detect_encoding(path)
    number = 0
    for line in bounded_lines(path, encoding):
        # A JSON text holds no raw CR or LF, so every line end ends a record; a raw U+2028
        # inside a value is kept (str.splitlines would split there).
        if line.endswith("\r") and not line.endswith("\r\n"):
            line = line[:-1]
        number += 1
        if not line.strip():
            continue
        position += 1
        if line.startswith(TOO_LONG):
            limit = textread.MAX_LINE // (1024 * 1024)
            message = f"line {number} is longer than {limit} MB and was not read"
            rows.append(SheetRow(position, {}, message, number))
            continue
        try:
            value = json.loads(line)
        except (ValueError, RecursionError) as exc:
            rows.append(SheetRow(position, {}, f"line {number} is not valid JSON ({exc})", number))
            continue
        if not isinstance(value, dict):
            kind = type(value).__name__
            message = f"line {number} is a JSON {kind}, not an object {{...}}"
            rows.append(SheetRow(position, {}, message, number))
            continue
        rows.append(SheetRow(position, _mapping_cells(value), None, number))
    return Sheet(path, _columns_of(r.cells for r in rows), rows)


def _read_yaml(path: Path, text: str) -> Sheet:
    data = parse_yaml(path, text, typed=False)
    defaults: dict[str, Any] = {}
    if isinstance(data, dict) and "rows" in data:
        raw_defaults = data.get("defaults") or {}
        if not isinstance(raw_defaults, dict):
            raise InputError(f"{path}: `defaults:` must be a mapping of column: value")
        defaults = _mapping_cells(raw_defaults)
        data = data["rows"] if data["rows"] is not None else []
    elif isinstance(data, dict) and "sheet" in data:
        raise InputError(f"{path}: is a job file, not a sheet; pass it as the SOURCE instead")
    if not isinstance(data, list):
        raise InputError(
            f"{path}: a YAML sheet must be a list of rows, or a mapping with `rows:` "
            "(and optional `defaults:`)"
        )
    rows: list[SheetRow] = []
    for position, item in enumerate(data, start=1):
        if isinstance(item, dict):
            rows.append(SheetRow(position, _mapping_cells(item), None, getattr(item, "line", None)))
        else:
            kind = "empty" if item is None else f"a {type(item).__name__}"
            rows.append(SheetRow(position, {}, f"item {position} is {kind}, not a mapping"))
    return Sheet(path, _columns_of(r.cells for r in rows), rows, defaults)
