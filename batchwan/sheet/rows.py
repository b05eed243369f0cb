"""A sheet's records into its rows: the header found below title rows, blank rows skipped, the
cells fitted to the header, unnamed empty columns dropped; held whole (``Sheet``) or given one at
a time (``SheetStream``). Shared by CSV, TSV and XLSX (see ``sheet.loader``)."""

from __future__ import annotations

import collections
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchwan.collector import collector_paused
from batchwan.errors import InputError
from batchwan.sheet.headers import read_header
from batchwan.sheet.textread import Record
from batchwan.values import SheetRow

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


def has_readable_row(sheet: Sheet | SheetStream) -> bool:
    """Whether any row of the sheet could be read (a stream looks ahead, keeping what it read)."""
    if isinstance(sheet, SheetStream):
        return sheet.rows.has_readable_row()
    return any(r.read_error is None for r in sheet.rows)


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
class Header:
    """A sheet's header as found: its column names, and what was read on the way."""

    columns: list[str]
    unnamed_at: list[int]  # the columns whose header cell is blank
    early: list[Record]  # data records read while looking for the header
    notes: list[str]


def find_header(path: Path, records: Iterator[Record], unit: str, names: frozenset[str]) -> Header:
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
    return Header(columns, unnamed_at, early, header_notes)


#: Cells this short are shared between rows when equal (durations, resolutions, campaigns):
#: a big sheet repeats them on every row, and one copy each saves a third of its memory.
_SHARED_CELL = 24
#: The most distinct cells kept for sharing: the repeated ones come in with the first rows,
#: and past that a big sheet's distinct ids and seeds would cost more than sharing saves.
_SHARED_MOST = 65_536


def assemble(
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
    return collect(path, find_header(path, records, unit, names), records, notes, hidden)


def collect(
    path: Path,
    header: Header,
    records: Iterator[Record],
    notes: Iterable[str],
    hidden: frozenset[int],
) -> Sheet:
    """Every row of the sheet in a list, without the unnamed columns no row fills."""
    columns = header.columns
    used: set[int] = set()  # which unnamed columns hold anything, so empty ones can be dropped
    skipped: list[int] = []
    shared: dict[str, str] = {}
    rows = list(sheet_rows(records, header, hidden, skipped, used, shared))
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


def sheet_rows(
    records: Iterator[Record],
    header: Header,
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
