"""results.xlsx, read back with openpyxl: frozen header, filter, widths, colours, safe cells."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook
from recordfactory import mixed_run

from batchwan.outputs.results import results_table
from batchwan.outputs.statusview import STATUS_COLOURS
from batchwan.outputs.xlsx import MAX_WIDTH, write_results_xlsx
from batchwan.values import Status

HEADER = ["row", "id", "status", "error", "attempts", "cost", "notes"]


def _rows() -> list[list[str]]:
    return [
        ["1", "cat", "succeeded", "", "1", "0.50", "fine"],
        ["2", "dog", "failed", "3001 Task Execution Error", "1", "0.50", "x" * 500],
        ["3", "=cmd|' /C calc'!A0", "invalid", '=HYPERLINK("http://evil")', "0", "0.00", ""],
        ["4", "bell\x07and\x1bescape", "unknown", "", "1", "0.50", "line one\nline two"],
    ]


@pytest.fixture
def book(tmp_path: Path) -> Iterator[Workbook]:
    """The workbook written from a small table, opened for reading."""
    path = tmp_path / "results.xlsx"
    write_results_xlsx(path, HEADER, _rows())
    workbook = load_workbook(path)
    yield workbook
    workbook.close()


def test_header_is_frozen_and_filtered(book: Workbook) -> None:
    """The header row stays in view when scrolling and carries a filter over every column."""
    sheet = book["results"]
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:G5"
    assert [c.value for c in sheet[1]] == HEADER
    assert all(c.font.bold for c in sheet[1])


@pytest.mark.parametrize(("line", "status"), [(2, Status.SUCCEEDED), (3, Status.FAILED)])
def test_status_cells_are_filled_with_the_report_colours(
    book: Workbook, line: int, status: Status
) -> None:
    """A status cell is filled and lettered in the same colours report.html uses."""
    cell = book["results"].cell(row=line, column=3)
    colour = STATUS_COLOURS[status]
    assert cell.value == status.value
    assert cell.fill.fill_type == "solid"
    assert cell.fill.fgColor.rgb[-6:] == colour.pale.lstrip("#").upper()
    assert cell.font.color.rgb[-6:] == colour.strong.lstrip("#").upper()


def test_other_cells_are_not_coloured(book: Workbook) -> None:
    """Only the status column is coloured; an id reading "failed" is not."""
    assert book["results"].cell(row=2, column=2).fill.fill_type is None


def test_formula_like_text_stays_text(book: Workbook) -> None:
    """A cell starting with "=" is stored as text, so the spreadsheet never runs it."""
    sheet = book["results"]
    for column in (2, 4):
        cell = sheet.cell(row=4, column=column)
        assert cell.data_type == "s"
        assert str(cell.value).startswith("=")


def test_control_characters_are_dropped(book: Workbook) -> None:
    """Characters XML cannot hold are left out instead of breaking the file; newlines stay."""
    sheet = book["results"]
    assert sheet.cell(row=5, column=2).value == "belland" + "escape"
    assert sheet.cell(row=5, column=7).value == "line one\nline two"


def test_counts_and_money_are_numbers(book: Workbook) -> None:
    """row and attempts are whole numbers and cost an amount, so they sort as numbers."""
    sheet = book["results"]
    assert sheet.cell(row=3, column=1).value == 2
    assert sheet.cell(row=3, column=5).value == 1
    assert sheet.cell(row=3, column=6).value == pytest.approx(0.5)


def test_column_widths_follow_content_within_bounds(book: Workbook) -> None:
    """Columns are as wide as their text, a long note capped, a short one never cramped."""
    widths = book["results"].column_dimensions
    assert widths["G"].width == MAX_WIDTH
    assert 6 <= widths["A"].width < 10
    assert widths["D"].width > len("3001 Task Execution Error")


def test_written_atomically_over_an_old_file(tmp_path: Path) -> None:
    """A new workbook replaces the old one in one step and leaves no temporary file behind."""
    path = tmp_path / "results.xlsx"
    path.write_bytes(b"old")
    write_results_xlsx(path, HEADER, _rows())
    assert path.read_bytes()[:2] == b"PK"
    assert [p.name for p in tmp_path.iterdir()] == ["results.xlsx"]


def test_results_table_of_a_run_round_trips(tmp_path: Path) -> None:
    """The results table of a mixed run is written whole: every row, every status."""
    records = mixed_run(tmp_path / "run")
    header, rows = results_table(records)
    path = tmp_path / "results.xlsx"
    write_results_xlsx(path, header, rows)
    workbook = load_workbook(path, read_only=True)
    try:
        sheet = workbook["results"]
        read = list(sheet.iter_rows(values_only=True))
    finally:
        workbook.close()
    assert len(read) == len(records) + 1
    status_at = header.index("status")
    assert {r[status_at] for r in read[1:]} == {s.value for s in Status}


# --- the workbook of a run folder ---------------------------------------------------------------


@pytest.fixture
def run_book(tmp_path: Path) -> Iterator[Workbook]:
    """results.xlsx written from a real run folder, cells starting with = + - @ in the sheet."""
    from recordfactory import make_run

    from batchwan.outputs.xlsx import write_run_workbook

    extras = [
        {"campaign": c, "offset": "-5", "zip": "007"} for c in ("=1+2", "+A1", "-A1+1", "@SUM(A1)")
    ]
    run_dir = make_run(tmp_path, extras=extras)
    path = write_run_workbook(run_dir)
    assert path.stat().st_mode & stat.S_IRGRP  # analysts in the group can open it
    workbook = load_workbook(path)
    yield workbook
    workbook.close()


def _column(sheet: Any, name: str) -> list[Any]:
    header = [c.value for c in sheet[1]]
    at = header.index(name) + 1
    return [sheet.cell(row=i, column=at) for i in range(2, sheet.max_row + 1)]


def test_run_workbook_cells_are_typed(run_book: Workbook) -> None:
    """Numbers are numbers, times are real dates (UTC), cost an amount in a currency format."""
    sheet = run_book["results"]
    assert [c.value for c in _column(sheet, "row")] == [1, 2, 3, 4]
    submitted = _column(sheet, "submitted_at")[0]
    assert isinstance(submitted.value, datetime)
    assert submitted.is_date
    cost = _column(sheet, "cost")[0]
    assert isinstance(cost.value, float)
    assert "$" in cost.number_format
    assert [c.value for c in _column(sheet, "duration")] == [5, 5, 5, 5]
    assert [c.value for c in _column(sheet, "offset")] == [-5, -5, -5, -5]
    assert [c.value for c in _column(sheet, "zip")] == ["007"] * 4  # a leading zero is kept


def test_run_workbook_text_never_runs_and_has_no_apostrophe(run_book: Workbook) -> None:
    """No cell is a formula; text starting with = + - @ is stored as written, as text."""
    sheet = run_book["results"]
    assert [c.value for c in _column(sheet, "campaign")] == ["=1+2", "+A1", "-A1+1", "@SUM(A1)"]
    for row in sheet.iter_rows():
        for cell in row:
            assert cell.data_type != "f"
            if isinstance(cell.value, str):
                assert cell.data_type == "s"
                assert not cell.value.startswith("'")


def test_run_workbook_links_each_video(run_book: Workbook) -> None:
    """A row's video_file is a relative link to the video beside the workbook."""
    cell = _column(run_book["results"], "video_file")[0]
    assert cell.value == "videos/k1.mp4"
    assert cell.hyperlink is not None
    assert cell.hyperlink.target == "videos/k1.mp4"


def test_run_workbook_has_a_summary_tab(run_book: Workbook) -> None:
    """The second tab holds the figures and the breakdowns by model and by resolution."""
    assert run_book.sheetnames == ["results", "summary"]
    values = [c.value for row in run_book["summary"].iter_rows() for c in row]
    assert "cost spent" in values
    assert "By model" in values
    assert "By resolution" in values
    assert "wan2.5-i2v-preview" in values
