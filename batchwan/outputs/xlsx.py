"""results.xlsx: the results table as a workbook an analyst can sort and filter at once."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter

from batchwan.outputs.statusview import STATUS_COLOURS

#: Columns whose cells are whole numbers, stored as numbers so that they sort as numbers.
NUMERIC_COLUMNS = frozenset({"row", "attempts"})
#: Columns whose cells are amounts, stored as numbers for the same reason.
DECIMAL_COLUMNS = frozenset({"cost"})

MAX_CELL = 32_767  # Excel refuses longer text in one cell
MIN_WIDTH, MAX_WIDTH = 6, 60
WIDTH_SAMPLE = 2000  # rows looked at to size a column; the rest rarely change the answer

_HEADER_FONT = Font(bold=True)
_HEADER_FILL = PatternFill("solid", start_color="EAEEF2", end_color="EAEEF2")


def _hex(colour: str) -> str:
    return colour.lstrip("#").upper()


def _status_styles() -> dict[str, tuple[PatternFill, Font]]:
    return {
        status.value: (
            PatternFill("solid", start_color=_hex(c.pale), end_color=_hex(c.pale)),
            Font(bold=True, color=_hex(c.strong)),
        )
        for status, c in STATUS_COLOURS.items()
    }


def _cell_value(column: str, text: str) -> str | int | float:
    if column in NUMERIC_COLUMNS and text.isdigit():
        return int(text)
    if column in DECIMAL_COLUMNS:
        with contextlib.suppress(ValueError):
            return float(text)
    # openpyxl refuses control characters that XML cannot hold; a sheet can contain them.
    clean: str = ILLEGAL_CHARACTERS_RE.sub("", text)
    return clean[:MAX_CELL]


def _cell(sheet: Any, column: str, text: str) -> Any:
    cell = WriteOnlyCell(sheet, value=_cell_value(column, text))
    # Text that looks like a formula stays text: a cell from a sheet must never run.
    if isinstance(cell.value, str) and cell.value.startswith("="):
        cell.data_type = "s"
    return cell


def _widths(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[float]:
    widths = [float(len(name)) + 2 for name in header]  # room for the filter button
    for row in rows[:WIDTH_SAMPLE]:
        for i, cell in enumerate(row[: len(widths)]):
            longest = max((len(line) for line in cell.splitlines()), default=0)
            widths[i] = max(widths[i], float(longest))
    return [min(max(w + 1, MIN_WIDTH), MAX_WIDTH) for w in widths]


def write_results_xlsx(path: Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Write the results table as a workbook: header frozen, a filter on every column, columns
    sized to their content, the status column coloured as in report.html; written atomically."""
    path = Path(path)
    # Write-only mode streams rows to disk: a workbook of many thousand rows stays quick and small.
    book = Workbook(write_only=True)
    sheet = book.create_sheet("results")
    sheet.freeze_panes = "A2"
    last = get_column_letter(max(len(header), 1))
    sheet.auto_filter.ref = f"A1:{last}{len(rows) + 1}"
    for i, width in enumerate(_widths(header, rows), start=1):
        sheet.column_dimensions[get_column_letter(i)].width = width
    titles = []
    for name in header:
        cell = _cell(sheet, "", name)
        cell.font, cell.fill = _HEADER_FONT, _HEADER_FILL
        titles.append(cell)
    sheet.append(titles)
    status_at = header.index("status") if "status" in header else None
    styles = _status_styles()
    for row in rows:
        cells = []
        for i, text in enumerate(row):
            cell = _cell(sheet, header[i] if i < len(header) else "", text)
            if i == status_at and text in styles:
                cell.fill, cell.font = styles[text]
            cells.append(cell)
        sheet.append(cells)
    _save_atomic(book, path)


def _save_atomic(book: Workbook, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        book.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
