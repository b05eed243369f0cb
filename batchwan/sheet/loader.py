"""Read any sheet format into rows that remember their position, cells as the user typed them.

Formats: CSV, TSV, XLSX, JSONL and YAML (a list of mappings, or a mapping with ``rows:`` and an
optional ``defaults:``). Encodings and separators: ``sheet.textread``; workbooks (tabs, links,
merged cells, hidden rows): ``sheet.workbook``.

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

import collections
import contextlib
import datetime as dt
import gc
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchwan.errors import InputError
from batchwan.sheet import textread
from batchwan.sheet.headers import read_header
from batchwan.sheet.textread import (
    TOO_LONG,
    Record,
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
#: How many non-blank rows are searched for the header below title rows.
HEADER_SEARCH = 20
#: How many cells of a row are looked at to tell whether it is the header.
HEADER_WIDTH = 512


@dataclass(frozen=True)
class Sheet:
    """A sheet as read: its columns in sheet order, its rows, and a YAML sheet's defaults."""

    path: Path
    columns: tuple[str, ...]
    rows: list[SheetRow]
    defaults: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # what was guessed in reading it (encoding, separator, tab)


class RowStream:
    """A sheet's rows, read one at a time and once; nothing read is kept after it is given.

    ``has_readable_row`` may look ahead before the rows are taken: the rows it reads past are
    kept until they are given (one, unless the first rows cannot be read).
    """

    def __init__(self, rows: Iterator[SheetRow]) -> None:
        self._rows = rows
        self._ahead: collections.deque[SheetRow] = collections.deque()

    def has_readable_row(self) -> bool:
        """Whether any row not yet given could be read."""
        if any(row.read_error is None for row in self._ahead):
            return True
        for row in self._rows:
            self._ahead.append(row)
            if row.read_error is None:
                return True
        return False

    def __iter__(self) -> Iterator[SheetRow]:
        while self._ahead:
            yield self._ahead.popleft()
        yield from self._rows

    def close(self) -> None:
        """Stop reading: the file is closed and the csv module's field limit put back now."""
        self._ahead.clear()
        close = getattr(self._rows, "close", None)
        if close is not None:
            close()


@dataclass(frozen=True)
class SheetStream:
    """A sheet whose header is read and whose rows are read as they are taken (see RowStream)."""

    path: Path
    columns: tuple[str, ...]
    rows: RowStream
    notes: tuple[str, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)  # always empty: a CSV has none


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
        return _assemble(path, read_records(path, fmt), "line", fmt.notes, names=names)
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
    header = _header(path, records, "line", names)
    if header.unnamed_at:
        with collector_paused():
            return _collect(path, header, records, fmt.notes, frozenset())
    rows = _sheet_rows(records, header, frozenset(), [], set(), None)
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


def has_readable_row(sheet: Sheet | SheetStream) -> bool:
    """Whether any row of the sheet could be read (a stream looks ahead, keeping what it read)."""
    if isinstance(sheet, SheetStream):
        return sheet.rows.has_readable_row()
    return any(r.read_error is None for r in sheet.rows)


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


def _names_a_field(cells: list[str], names: frozenset[str] = frozenset()) -> bool:
    """Whether a row reads as a header: one of its cells names a field (or a mapped column)."""
    # A header is not wider than this; a stray cell far to the right is not a reason to
    # compare thousands of cells with every field name.
    return any(
        read_header(c).field is not None or c.strip() in names
        for c in cells[:HEADER_WIDTH]
        if c.strip()
    )


def _title_like(cells: list[str]) -> bool:
    """A row that may be a title above the header: one or two cells of text."""
    return sum(1 for c in cells if c.strip()) <= 2


def has_header(rows: Iterable[list[str]]) -> bool:
    """Whether any of these rows is a header naming a field (for choosing a workbook's tab)."""
    return any(_names_a_field(cells) for cells in rows)


def _find_header(
    path: Path, records: Iterator[Record], unit: str, names: frozenset[str]
) -> tuple[Record, list[Record], list[str]]:
    """The header record, the records read past it (data), and a note on skipped title rows.

    Rows above the header are skipped only when they look like titles (one or two cells); the
    first fuller row is the header even when it names no field (the job file may map it).
    """
    seen: list[Record] = []
    after_first: list[Record] = []  # all read past the first candidate, unreadable ones too
    for record in records:
        if seen:
            after_first.append(record)
        if record.error is None and any(c.strip() for c in record.cells):
            seen.append(record)
            if (
                _names_a_field(record.cells, names)
                or not _title_like(record.cells)
                or len(seen) >= HEADER_SEARCH
            ):
                break
    if not seen:
        raise InputError(f"{path}: has no header row; the first {unit} must name the columns")
    last = seen[-1]
    if len(seen) > 1 and (_names_a_field(last.cells, names) or not _title_like(last.cells)):
        note = (
            f"the header is on {unit} {last.line}; the {unit}s above it are taken as "
            "titles and not read"
        )
        return last, [], [note]
    return seen[0], after_first, []


@dataclass(frozen=True)
class _Header:
    """A sheet's header as found: its column names, and what was read on the way."""

    columns: list[str]
    unnamed_at: list[int]  # the columns whose header cell is blank
    early: list[Record]  # data records read while looking for the header
    notes: list[str]


def _header(path: Path, records: Iterator[Record], unit: str, names: frozenset[str]) -> _Header:
    """Find the header among the first records; InputError when a column name repeats."""
    found, early, header_notes = _find_header(path, records, unit, names)
    header = found.cells
    columns = [h.strip() or f"column {i}" for i, h in enumerate(header, start=1)]
    seen: set[str] = set()
    for name in columns:
        if name in seen:
            raise InputError(f"{path}: column {name!r} appears twice in the header; rename one")
        seen.add(name)
    unnamed_at = [i for i, h in enumerate(header) if not h.strip()]
    return _Header(columns, unnamed_at, early, header_notes)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a sheet's rows are built or checked.

    A million rows are millions of new objects and no cycles: each collection pass walks all
    of them again, which doubled the time to read a big sheet. Only resumed if it was running.
    """
    running = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if running:
            gc.enable()


#: Cells this short are shared between rows when equal (durations, resolutions, campaigns):
#: a big sheet repeats them on every row, and one copy each saves a third of its memory.
_SHARED_CELL = 24
#: The most distinct cells kept for sharing: the repeated ones come in with the first rows,
#: and past that a big sheet's distinct ids and seeds would cost more than sharing saves.
_SHARED_MOST = 65_536


def _assemble(
    path: Path,
    records: Iterator[Record],
    unit: str,
    notes: Iterable[str] = (),
    hidden: frozenset[int] = frozenset(),
    names: frozenset[str] = frozenset(),
) -> Sheet:
    """Turn records (header first, somewhere) into a Sheet (shared by CSV, TSV and XLSX)."""
    with collector_paused():
        return _assemble_rows(path, records, unit, notes, hidden, names)


def _assemble_rows(
    path: Path,
    records: Iterator[Record],
    unit: str,
    notes: Iterable[str],
    hidden: frozenset[int],
    names: frozenset[str],
) -> Sheet:
    return _collect(path, _header(path, records, unit, names), records, notes, hidden)


def _collect(
    path: Path,
    header: _Header,
    records: Iterator[Record],
    notes: Iterable[str],
    hidden: frozenset[int],
) -> Sheet:
    """Every row of the sheet in a list, without the unnamed columns no row fills."""
    columns = header.columns
    used: set[int] = set()  # which unnamed columns hold anything, so empty ones can be dropped
    skipped: list[int] = []
    shared: dict[str, str] = {}
    rows = list(_sheet_rows(records, header, hidden, skipped, used, shared))
    unnamed = [columns[i] for i in header.unnamed_at if i not in used]
    if unnamed:
        drop = set(unnamed)
        columns = [c for c in columns if c not in drop]
        rows = [
            SheetRow(
                r.position,
                {k: v for k, v in r.cells.items() if k not in drop},
                r.read_error,
                r.line,
            )
            for r in rows
        ]
    all_notes = [*notes, *header.notes]
    if skipped:
        listed = ", ".join(str(n) for n in skipped[:10]) + (" ..." if len(skipped) > 10 else "")
        all_notes.append(
            f"{_rows(len(skipped))} hidden or filtered out in the workbook "
            f"{'is' if len(skipped) == 1 else 'are'} not sent (rows {listed}); "
            "--include-hidden sends them"
        )
    return Sheet(path, tuple(columns), rows, notes=tuple(all_notes))


def _sheet_rows(
    records: Iterator[Record],
    header: _Header,
    hidden: frozenset[int],
    skipped: list[int],
    used: set[int],
    shared: dict[str, str] | None,
) -> Iterator[SheetRow]:
    """The data rows after the header, one at a time.

    The line numbers of ``hidden`` rows go to ``skipped`` (they keep their position), the
    unnamed columns some row fills to ``used``; with ``shared``, equal short cells become one
    string (worth it only when every row is kept: a stream would keep every distinct one).
    """
    columns = header.columns
    width = len(columns)
    unnamed_at = header.unnamed_at
    position = 0
    for record in _chain(header.early, records):
        cells = record.cells
        # A first cell with text (most rows) settles it without looking at the others.
        if record.error is None and not (
            (cells and cells[0].strip()) or any(c.strip() for c in cells)
        ):
            continue
        position += 1
        if record.line in hidden:
            skipped.append(record.line)
            continue
        error = record.error
        if error is not None and record.cell is not None:
            name = columns[record.cell] if record.cell < width else f"cell {record.cell + 1}"
            error = f"{name}: {error}"
        if error is None and len(cells) > width:
            extra = [c for c in cells[width:] if c.strip()]
            if extra:
                error = (
                    f"has {len(cells)} cells but the header has {width} columns; "
                    "quote cells that contain the separator"
                )
        if len(cells) != width:
            cells = cells[:width] + [""] * (width - len(cells))
        for i in unnamed_at:
            if cells[i]:
                used.add(i)
        if shared is not None:
            if len(shared) < _SHARED_MOST:
                cells = [shared.setdefault(c, c) if len(c) <= _SHARED_CELL else c for c in cells]
            else:  # full of distinct ids and seeds: share what is in, add no more
                cells = [shared.get(c, c) if len(c) <= _SHARED_CELL else c for c in cells]
        yield SheetRow(position, dict(zip(columns, cells, strict=True)), error, record.line)


def _rows(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"


def _chain(first: list[Record], rest: Iterator[Record]) -> Iterator[Record]:
    yield from first
    yield from rest


def _read_xlsx(path: Path, tab: str | None, include_hidden: bool, names: frozenset[str]) -> Sheet:
    from batchwan.sheet.workbook import open_workbook

    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        book = open_workbook(path, tab=tab, include_hidden=include_hidden, has_header=has_header)
        hidden = frozenset() if include_hidden else book.hidden
        return _assemble(path, book.records, "row", book.notes, hidden, names)
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
