"""XLSX workbooks as people make them: tabs, title rows, links, merged cells, hidden rows.

* The tab: ``--tab`` (job file ``tab:``) by name, in any case; else the first tab. When the
  first tab has no header naming a field and another tab does, the sheet is refused naming the
  tab to pass, rather than read as zero rows.
* A link: ``=HYPERLINK("url", "label")`` reads as its url, and so does a cell with a hyperlink
  attached (Insert > Link), since the link is what a person means by the cell.
* Merged cells: a range merged over several rows reads its value in each of those rows, in the
  range's first column (a campaign name merged down its rows is meant for each of them); a
  range within one row (a title across columns) is left as it is.
* Hidden or filtered-out rows are not sent unless ``--include-hidden``; they keep their
  positions and are listed once in the notes.
* A formula other than HYPERLINK reads as the value Excel saved with it; a formula with no
  saved value makes its row invalid (open and save the workbook in Excel, or paste values).

Bounds: the zip's declared uncompressed sizes are checked before openpyxl opens anything (a
3 MB zip can declare gigabytes), and a workbook whose sheets are too large to load whole is
read row by row, without the checks above, and says so.
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchwan.errors import InputError
from batchwan.sheet.textread import MAX_CELL, Record, oversized

#: The most a workbook may hold once unzipped.
MAX_UNZIPPED = 256 * 1024 * 1024
#: Above this much unzipped XML, a workbook is read row by row (links, merges, hidden rows
#: not seen): loading it whole takes tens of times its size in memory.
MAX_WHOLE = 24 * 1024 * 1024

_HYPERLINK = re.compile(r'^=\s*HYPERLINK\(\s*"((?:[^"]|"")*)"', re.IGNORECASE)


@dataclass
class Workbook:
    """The chosen tab's rows as records, with the rows hidden in it and what was noticed."""

    tab: str
    records: Iterator[Record]
    hidden: frozenset[int]  # row numbers hidden or filtered out
    notes: list[str]


def _xlsx_value(value: Any) -> str:
    # Excel stores every number as a float; a whole number is shown (and meant) without ".0".
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return str(value)


def check_zip(path: Path) -> int:
    """The workbook's declared unzipped size; InputError when it is no workbook or too large."""
    try:
        with zipfile.ZipFile(path) as archive:
            total = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        raise InputError(f"{path}: is not an XLSX workbook (not a zip file)") from None
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    if total > MAX_UNZIPPED:
        raise InputError(
            f"{path}: unzips to {total / 1e6:.0f} MB; a workbook may hold at most "
            f"{MAX_UNZIPPED / 1e6:.0f} MB (save the rows as CSV, or split the workbook)"
        )
    return total


def open_workbook(
    path: Path, *, tab: str | None, include_hidden: bool, has_header: Any
) -> Workbook:
    """Open the tab to read; ``has_header(rows)`` says whether rows hold a usable header."""
    import openpyxl  # imported here: it is slow to import and only XLSX needs it

    size = check_zip(path)
    whole = size <= MAX_WHOLE
    with warnings.catch_warnings():
        # openpyxl warns about styles and extensions it ignores; they say nothing about the data.
        warnings.simplefilter("ignore")
        book = openpyxl.load_workbook(path, read_only=not whole, data_only=not whole)
    names = list(book.sheetnames)
    if not names:
        raise InputError(f"{path}: the workbook has no worksheets")
    chosen = _choose_tab(path, book, names, tab, has_header, whole)
    sheet = book[chosen]
    notes: list[str] = []
    if not whole:
        notes.append(
            f"the workbook is large ({size / 1e6:.0f} MB unzipped): it is read row by row, "
            "without looking for hidden rows, merged cells or links"
        )
        sheet.reset_dimensions()  # a stray cell at XFD1048576 must not mean 17 billion cells
        return Workbook(chosen, _plain_rows(sheet), frozenset(), notes)
    hidden = frozenset(number for number, dim in sheet.row_dimensions.items() if dim.hidden)
    if hidden and include_hidden:
        notes.append(f"hidden or filtered-out rows are read too ({len(hidden)}; --include-hidden)")
    cached = _cached_values(path, chosen) if _has_plain_formulas(sheet) else None
    return Workbook(chosen, _rich_rows(path, sheet, cached), hidden, notes)


def _choose_tab(
    path: Path, book: Any, names: list[str], tab: str | None, has_header: Any, whole: bool
) -> str:
    if tab is not None:
        wanted = tab.strip().casefold()
        for name in names:
            if name.strip().casefold() == wanted:
                return name
        raise InputError(f"{path}: has no tab {tab!r}; its tabs are: {', '.join(names)}")
    first = names[0]
    if len(names) == 1 or not whole or has_header(_head(book[first])):
        return first
    usable = [name for name in names[1:] if has_header(_head(book[name]))]
    if usable:
        raise InputError(
            f"{path}: its first tab {first!r} has no header naming prompt or image, but tab "
            f"{usable[0]!r} has one; pass --tab {usable[0]!r} (or `tab:` in a job file)"
        )
    return first


def _head(sheet: Any) -> list[list[str]]:
    """The first rows of a tab as text, for finding its header."""
    rows = sheet.iter_rows(max_row=20, max_col=min(sheet.max_column, 512), values_only=True)
    return [[_xlsx_value(v) for v in row] for row in rows]


def _plain_rows(sheet: Any) -> Iterator[Record]:
    for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
        yield _bounded(Record(number, [_xlsx_value(v) for v in values]))


def _has_plain_formulas(sheet: Any) -> bool:
    return any(
        cell.data_type == "f" and not _HYPERLINK.match(str(cell.value))
        for cell in _occupied(sheet).values()
    )


def _occupied(sheet: Any) -> dict[tuple[int, int], Any]:
    """(row, column) -> cell, for the cells the file holds.

    Not ``iter_rows``: it walks the whole rectangle up to the farthest cell, and one stray
    cell at XFD1048576 would make that 17 billion cells.
    """
    return sheet._cells  # type: ignore[no-any-return]  # openpyxl keeps no public view of it


def _cached_values(path: Path, tab: str) -> dict[tuple[int, int], Any]:
    """The values Excel saved with each formula cell (a second, value-only read)."""
    import openpyxl

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        sheet = book[tab]
        sheet.reset_dimensions()
        return {
            (r, c): value
            for r, row in enumerate(sheet.iter_rows(values_only=True), start=1)
            for c, value in enumerate(row, start=1)
            if value is not None
        }
    finally:
        book.close()


def _merged_fill(sheet: Any) -> dict[tuple[int, int], Any]:
    """(row, column) -> the value a merge over several rows shows there (first column only)."""
    fill: dict[tuple[int, int], Any] = {}
    for merged in sheet.merged_cells.ranges:
        if merged.max_row == merged.min_row:
            continue
        top = sheet.cell(merged.min_row, merged.min_col)
        for row in range(merged.min_row + 1, merged.max_row + 1):
            fill[(row, merged.min_col)] = top
    return fill


def _rich_rows(
    path: Path, sheet: Any, cached: dict[tuple[int, int], Any] | None
) -> Iterator[Record]:
    fill = _merged_fill(sheet)
    by_row: dict[int, dict[int, Any]] = {}
    for (row, column), cell in _occupied(sheet).items():
        by_row.setdefault(row, {})[column] = cell
    for (row, column), top in fill.items():
        by_row.setdefault(row, {})[column] = top
    for number in sorted(by_row):
        present = by_row[number]
        cells: list[str] = [""] * max(present)
        error: str | None = None
        for column, cell in present.items():
            text, problem = _cell_text(cell, cached)
            cells[column - 1] = text
            if problem and error is None:
                error = f"cell {cell.coordinate}: {problem}"
        yield _bounded(Record(number, cells, error))


def _cell_text(cell: Any, cached: dict[tuple[int, int], Any] | None) -> tuple[str, str | None]:
    """A cell as a person means it: a link's target, a formula's saved value, else the value."""
    value = cell.value
    if cell.data_type == "f":
        link = _HYPERLINK.match(str(value))
        if link:
            return link.group(1).replace('""', '"'), None
        saved = (cached or {}).get((cell.row, cell.column))
        if saved is None:
            return "", (
                f"holds the formula {str(value)[:60]} with no saved value; open and save the "
                "workbook in Excel (or paste the values)"
            )
        return _xlsx_value(saved), None
    if cell.hyperlink is not None and cell.hyperlink.target:
        return str(cell.hyperlink.target), None
    return _xlsx_value(value), None


def _bounded(record: Record) -> Record:
    if record.error is not None or all(len(c) <= MAX_CELL for c in record.cells):
        return record
    return oversized(record.line, record.cells)
