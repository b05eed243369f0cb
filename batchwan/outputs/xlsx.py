"""results.xlsx: the results table as a workbook an analyst can sort and filter at once.

Cells are typed (numbers, UTC times, amounts in a currency format); every text cell is stored as
text, so a cell starting with ``=`` shows as written and never runs, with no apostrophe added.
A second tab holds the summary and the breakdowns.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter

from batchwan.outputs.cells import Cell, typed_number
from batchwan.outputs.results import LEADING_COLUMNS, typed_table
from batchwan.outputs.runview import RunView, view_of
from batchwan.outputs.statusview import STATUS_COLOURS
from batchwan.outputs.xlsx_summary import summary_sheet

#: Columns whose cells are whole numbers, stored as numbers so that they sort as numbers.
NUMERIC_COLUMNS = frozenset({"row", "attempts", "duration", "seed", "line"})
#: Columns whose cells are amounts, stored as numbers in a currency format.
DECIMAL_COLUMNS = frozenset({"cost"})
XLSX_FILE = "results.xlsx"

MAX_CELL = 32_767  # Excel refuses longer text in one cell
MIN_WIDTH, MAX_WIDTH = 6, 60
WIDTH_SAMPLE = 2000  # rows looked at to size a column; the rest rarely change the answer
DATE_FORMAT = "yyyy-mm-dd hh:mm:ss"  # times are UTC, as in results.csv
MONEY_FORMAT = '"$"#,##0.00'

_HEADER_FONT = Font(bold=True)
_HEADER_FILL = PatternFill("solid", start_color="EAEEF2", end_color="EAEEF2")
_LINK_FONT = Font(color="0563C1", underline="single")


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


def _value(column: str, value: Cell) -> Cell:
    if isinstance(value, str):
        if column in NUMERIC_COLUMNS and value.isdigit():
            return int(value)
        if column in DECIMAL_COLUMNS:
            with contextlib.suppress(ValueError):
                return float(value)
        # openpyxl refuses control characters that XML cannot hold; a sheet can contain them.
        clean: str = ILLEGAL_CHARACTERS_RE.sub("", value)
        return clean[:MAX_CELL]
    if isinstance(value, datetime):
        # Excel has no time zones: the time is stored in UTC, as results.csv states it.
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    return value


def _cell(sheet: Any, column: str, value: Cell) -> Any:
    typed = _value(column, value)
    cell = WriteOnlyCell(sheet, value=typed)
    if isinstance(typed, str):
        cell.data_type = "s"  # text, even when it starts with "=": a cell must never run
    elif isinstance(typed, datetime):
        cell.number_format = DATE_FORMAT
    elif column in DECIMAL_COLUMNS and isinstance(typed, int | float):
        cell.number_format = MONEY_FORMAT
    return cell


def _text_length(value: Cell) -> int:
    if isinstance(value, datetime):
        return len(DATE_FORMAT)
    text = "" if value is None else str(value)
    return max((len(line) for line in text.splitlines()), default=0)


def _widths(header: Sequence[str], rows: Sequence[Sequence[Cell]]) -> list[float]:
    widths = [float(len(name)) + 2 for name in header]  # room for the filter button
    for row in rows[:WIDTH_SAMPLE]:
        for i, cell in enumerate(row[: len(widths)]):
            widths[i] = max(widths[i], float(_text_length(cell)))
    return [min(max(w + 1, MIN_WIDTH), MAX_WIDTH) for w in widths]


def _header_row(sheet: Any, header: Sequence[str]) -> list[Any]:
    titles = []
    for name in header:
        cell = _cell(sheet, "", name)
        cell.font, cell.fill = _HEADER_FONT, _HEADER_FILL
        titles.append(cell)
    return titles


def _results_sheet(book: Workbook, header: Sequence[str], rows: Sequence[Sequence[Cell]]) -> None:
    sheet = book.create_sheet("results")
    sheet.freeze_panes = "A2"
    last = get_column_letter(max(len(header), 1))
    sheet.auto_filter.ref = f"A1:{last}{len(rows) + 1}"
    for i, width in enumerate(_widths(header, rows), start=1):
        sheet.column_dimensions[get_column_letter(i)].width = width
    sheet.append(_header_row(sheet, header))
    status_at = header.index("status") if "status" in header else None
    video_at = header.index("video_file") if "video_file" in header else None
    styles = _status_styles()
    for row in rows:
        cells = []
        for i, value in enumerate(row):
            cell = _cell(sheet, header[i] if i < len(header) else "", value)
            if i == status_at and value in styles:
                cell.fill, cell.font = styles[str(value)]
            elif i == video_at and isinstance(value, str) and value:
                cell.hyperlink = value  # relative: opens the video beside the workbook
                cell.font = _LINK_FONT
            cells.append(cell)
        sheet.append(cells)


def write_results_xlsx(
    path: Path,
    header: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    summary: Mapping[str, Any] | None = None,
) -> None:
    """Write the results table as a workbook: typed cells, header frozen, a filter on every
    column, columns sized to their content, the status coloured as in report.html, each video
    linked; with ``summary``, a second tab of figures and breakdowns; written atomically."""
    path = Path(path)
    # Write-only mode streams rows to disk: a workbook of many thousand rows stays quick and small.
    book = Workbook(write_only=True)
    _results_sheet(book, header, rows)
    if summary is not None:
        summary_sheet(book, summary, _cell, _HEADER_FONT)
    _save_atomic(book, path)


def own_typed(rows: Sequence[list[Cell]], first_own: int) -> None:
    """Turn the sheet's own cells that are plain numbers into numbers (in place)."""
    for row in rows:
        for i in range(first_own, len(row)):
            value = row[i]
            if isinstance(value, str):
                number = typed_number(value)
                if number is not None:
                    row[i] = number


def write_run_workbook(source: Path | RunView) -> Path:
    """Write results.xlsx into a run folder from its record (or from the rows a run just
    built for its other files); return its path."""
    view = view_of(source)
    header, rows = typed_table(view.records, view.columns)
    first_own = header.index("line") + 1 if "line" in header else len(LEADING_COLUMNS)
    own_typed(rows, first_own)
    path = view.run_dir / XLSX_FILE
    write_results_xlsx(path, header, rows, view.summary)
    return path


def _save_atomic(book: Workbook, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    mask = os.umask(0)
    os.umask(mask)
    try:
        # mkstemp makes 0600 files; the workbook is for the analysts too, as results.csv is.
        os.chmod(tmp, 0o666 & ~mask)
        book.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
