"""Sheet lines people can find, and a stranger's sheet read within bounds."""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import openpyxl
import pytest

from batchwan.checks.validation import check_rows
from batchwan.errors import InputError
from batchwan.sheet import textread, workbook
from batchwan.sheet.loader import read_sheet
from batchwan.values import JobSpec

URL = "https://images.example.com/a.jpg"


def test_csv_lines_count_header_titles_blanks_and_records(tmp_path: Path) -> None:
    """A CSV row's line is its record number, header, title and blank rows counted."""
    path = tmp_path / "s.csv"
    path.write_text(f'Shots\n\nprompt,image\n"two\nlines",{URL}\n\n,\nb,{URL}\n', encoding="utf-8")
    rows = read_sheet(path).rows
    assert [(r.position, r.line) for r in rows] == [(1, 4), (2, 7)]


def test_xlsx_lines_are_excel_row_numbers(tmp_path: Path) -> None:
    """A workbook row's line is the row number Excel shows."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet["A2"], sheet["B2"] = "prompt", "image"
    sheet["A3"], sheet["B3"] = "a", URL
    sheet["A9"], sheet["B9"] = "b", URL
    book.save(tmp_path / "s.xlsx")
    rows = read_sheet(tmp_path / "s.xlsx").rows
    assert [(r.position, r.line) for r in rows] == [(1, 3), (2, 9)]


def test_jsonl_and_yaml_lines(tmp_path: Path) -> None:
    """JSONL: the line number; YAML: the line where the item starts."""
    jsonl = tmp_path / "s.jsonl"
    jsonl.write_text('\n{"prompt": "a"}\n\n\n{"prompt": "b"}\n', encoding="utf-8")
    assert [r.line for r in read_sheet(jsonl).rows] == [2, 5]
    yaml_path = tmp_path / "s.yaml"
    yaml_path.write_text("# shots\n- prompt: a\n  image: x\n\n- prompt: b\n", encoding="utf-8")
    assert [r.line for r in read_sheet(yaml_path).rows] == [2, 5]


def test_messages_name_the_sheet_line(tmp_path: Path) -> None:
    """`row N (sheet line L): column: message`, with `row N` first for scripts."""
    path = tmp_path / "s.jsonl"
    path.write_text(f'\n\n{{"prompt": "a", "image": "{URL}", "seed": "-1"}}\n', "utf-8")
    issue = check_rows(read_sheet(path), JobSpec(sheet=path))[0].issues[0]
    assert str(issue) == (
        "row 1 (sheet line 3): seed: must be a whole number from 0 to 2147483647, got -1"
    )


def test_a_huge_cell_is_an_invalid_row_not_an_unreadable_sheet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One cell over the cell limit makes its row invalid; the other rows are read."""
    monkeypatch.setattr(textread, "MAX_CELL", 1000)
    path = tmp_path / "s.csv"
    path.write_text(f'prompt,image\na,"data:image/png;base64,{"A" * 5000}"\nb,{URL}\n', "utf-8")
    rows = check_rows(read_sheet(path), JobSpec(sheet=path))
    assert rows[0].status == "invalid"
    assert str(rows[0].issues[0]).startswith("row 1: image: holds 0 MB; a cell may hold at most")
    assert rows[1].status == "pending"


def test_a_huge_line_is_skipped_without_being_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A line over the line limit is read in pieces, never whole; its row says why."""
    monkeypatch.setattr(textread, "MAX_LINE", 4096)
    path = tmp_path / "s.csv"
    path.write_text(f"prompt,image\nhuge,{'x' * 100_000}\nb,{URL}\n", encoding="utf-8")
    reads: list[int] = []
    real = textread.io.TextIOWrapper

    class Spy(real):  # type: ignore[misc, valid-type]  # a spy on the sizes read
        def readline(self, size: int = -1) -> str:
            line = super().readline(size)
            reads.append(len(line))
            return line

    monkeypatch.setattr(textread.io, "TextIOWrapper", Spy)
    rows = read_sheet(path).rows
    assert max(reads) <= 4097
    assert rows[0].read_error is not None
    assert rows[0].read_error.startswith("is longer than 0 MB and was not read")
    assert rows[1].cells == {"prompt": "b", "image": URL}


def test_the_csv_field_limit_is_restored(tmp_path: Path) -> None:
    """Reading a sheet leaves the csv module's process-wide limit as it found it."""
    before = csv.field_size_limit()
    path = tmp_path / "s.csv"
    path.write_text(f"prompt,image\na,{URL}\n", encoding="utf-8")
    read_sheet(path)
    assert csv.field_size_limit() == before


def test_a_zip_bomb_is_refused_before_it_is_opened(tmp_path: Path) -> None:
    """An xlsx whose members declare more than the limit unzipped is refused by its sizes."""
    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<x/>")
        archive.writestr("xl/sharedStrings.xml", b"\0" * (workbook.MAX_UNZIPPED + 1))
    assert path.stat().st_size < 2 * 1024 * 1024
    with pytest.raises(InputError, match=r"unzips to 268 MB; a workbook may hold at most 268 MB"):
        read_sheet(path)


def test_a_huge_jsonl_line_is_its_rows_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A JSONL line over the limit is an invalid row; the next line is still read."""
    monkeypatch.setattr(textread, "MAX_LINE", 1000)
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps({"prompt": "x" * 5000}) + '\n{"prompt": "b"}\n', "utf-8")
    rows = read_sheet(path).rows
    assert rows[0].read_error == "line 1 is longer than 0 MB and was not read"
    assert rows[1].cells == {"prompt": "b"}


def test_an_oversized_yaml_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """YAML is parsed whole, so a YAML sheet has a size limit."""
    from batchwan.sheet import loader

    monkeypatch.setattr(loader, "MAX_YAML_BYTES", 100)
    path = tmp_path / "s.yaml"
    path.write_text("- prompt: " + "x" * 200 + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="a YAML file may be at most"):
        read_sheet(path)
