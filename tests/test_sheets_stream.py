"""A CSV read as a stream of rows gives what reading it whole gives, one row at a time."""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchwan.checks.validation import check_rows, iter_checked
from batchwan.errors import InputError
from batchwan.sheet import rows as sheet_rows
from batchwan.sheet import textread
from batchwan.sheet.jobfile import load_source
from batchwan.sheet.loader import RowStream, Sheet, SheetStream, open_sheet, read_sheet
from batchwan.values import SheetRow
from tests.messy_sheets import MIXED_ROWS

URL = "https://images.example.com/a.jpg"
MEBIBYTE = 1024 * 1024

#: Valid rows, bad cells, a repeated id, a repeated content, a blank line, a title row above the
#: header, a quoted cell over two lines, a row with too many cells.
MIXED = MIXED_ROWS


def write(tmp_path: Path, data: str | bytes, name: str = "s.csv") -> Path:
    path = tmp_path / name
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8", newline="")
    else:
        path.write_bytes(data)
    return path


def streamed(path: Path, **options: str) -> SheetStream:
    sheet = open_sheet(path, **options)  # type: ignore[arg-type]  # tests pass str options only
    assert isinstance(sheet, SheetStream), "a CSV without blank header cells is streamed"
    return sheet


def same_sheet(stream: SheetStream, whole: Sheet) -> None:
    assert (stream.path, stream.columns, stream.notes) == (whole.path, whole.columns, whole.notes)
    assert list(stream.rows) == whole.rows


def test_a_mixed_sheet_streams_the_rows_read_whole(tmp_path: Path) -> None:
    """Positions, sheet lines, read errors, a cell over two lines: row for row the same."""
    path = write(tmp_path, MIXED)
    whole = read_sheet(path)
    assert [r.line for r in whole.rows] == [4, 5, 6, 8, 9, 10, 11, 12]  # records, not lines
    same_sheet(streamed(path), whole)


def test_checking_a_stream_says_what_checking_the_whole_sheet_says(tmp_path: Path) -> None:
    """The same statuses, keys, problems (with their lines) and notes, duplicates included."""
    path = write(tmp_path, MIXED)
    spec = load_source(path)
    before = check_rows(read_sheet(path), spec)
    after = list(iter_checked(streamed(path), spec))
    assert after == before
    said = [str(issue) for row in after for issue in row.issues]
    assert (
        "row 3 (sheet line 6): id: 'a1' is also the id of row 1; give each row its own id" in said
    )
    assert any("duplicate of row 5" in line for line in said)


def test_rows_are_checked_as_they_are_taken(tmp_path: Path) -> None:
    """Nothing is read ahead of the row being checked once the first readable row is seen."""
    path = write(tmp_path, "prompt,image\n" + "".join(f"p{n},{URL}\n" for n in range(50)))
    stream = streamed(path)
    taken: list[int] = []

    def counted(rows: Iterator[SheetRow]) -> Iterator[SheetRow]:
        for row in rows:
            taken.append(row.position)
            yield row

    lazy = SheetStream(stream.path, stream.columns, RowStream(counted(iter(stream.rows))))
    checked = iter_checked(lazy, load_source(path))
    assert taken == [1]  # the look for a readable row, for the headers' check
    assert next(checked).position == 1
    assert next(checked).position == 2
    assert taken == [1, 2]


def test_the_look_ahead_keeps_every_row_in_order() -> None:
    """Unreadable rows read while looking for a readable one are still given, first."""
    rows = [SheetRow(1, {}, "bad"), SheetRow(2, {}, "bad"), SheetRow(3, {"prompt": "p"})]
    stream = RowStream(iter(rows))
    assert stream.has_readable_row()
    assert stream.has_readable_row()  # asked again: answered from what was read
    assert list(stream) == rows
    unreadable = RowStream(iter(rows[:2]))
    assert not unreadable.has_readable_row()
    assert list(unreadable) == rows[:2]


def test_a_sheet_of_unreadable_rows_is_checked_without_its_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No readable row: no column is demanded, each row says its own problem (as whole)."""
    monkeypatch.setattr(textread, "MAX_LINE", 30)
    path = write(tmp_path, "title\n" + "x" * 40 + "\n" + "y" * 40 + "\n")
    spec = load_source(path)
    before = check_rows(read_sheet(path), spec)
    after = list(iter_checked(streamed(path), spec))
    assert after == before
    assert [(row.position, row.line) for row in after] == [(1, 2), (2, 3)]
    assert all("was not read" in row.issues[0].message for row in after)


def test_an_unreadable_line_below_a_header_that_names_no_field_is_a_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Looking past a title-like header for a better one keeps the unreadable lines it meets."""
    monkeypatch.setattr(textread, "MAX_LINE", 30)
    path = write(tmp_path, "words,link\n" + "x" * 40 + "\nshort,one\n")
    rows = read_sheet(path).rows
    assert [(r.position, r.line, r.read_error is not None) for r in rows] == [
        (1, 2, True),
        (2, 3, False),
    ]
    assert list(streamed(path).rows) == rows


def test_the_encoding_found_at_the_end_of_a_big_file(tmp_path: Path) -> None:
    """One Windows-1252 byte past the first megabytes decides how every row is read."""
    body = "".join(f"row {n} of a long sheet,{URL}\n" for n in range(3 * MEBIBYTE // 40))
    data = ("prompt,image\n" + body).encode("ascii") + b"caf\xe9 at the end," + URL.encode() + b"\n"
    assert len(data) > 2 * MEBIBYTE  # past the first chunk the encoding is checked in
    path = write(tmp_path, data)
    stream = streamed(path)
    assert stream.notes == (
        "the sheet is not UTF-8; read as Windows-1252 (if letters look wrong, set `encoding:` "
        "in a job file, or save it as CSV UTF-8)",
    )
    rows = list(stream.rows)
    assert rows[-1].cells["prompt"] == "café at the end"
    assert rows == read_sheet(path).rows


def test_a_late_byte_the_marked_encoding_cannot_read_fails_the_stream(tmp_path: Path) -> None:
    """A UTF-8 mark, then a byte UTF-8 has no reading for: the sheet fails when it is reached."""
    lines = "".join(f"p{n},{URL}\n" for n in range(MEBIBYTE // 30))
    path = write(tmp_path, codecs.BOM_UTF8 + f"prompt,image\n{lines}".encode() + b"\xff,x\n")
    stream = streamed(path)
    with pytest.raises(InputError, match=r"cannot be read as utf-8-sig \(byte 0xff\)"):
        list(stream.rows)


@pytest.mark.parametrize("boundary", [8192, MEBIBYTE])
@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
def test_a_quoted_line_break_across_a_read_boundary(
    tmp_path: Path, boundary: int, line_end: str
) -> None:
    """A cell whose line break ends the text layer's (8 KiB) or the encoding check's (1 MiB)
    chunk: with CR LF, the CR ends one chunk and the LF starts the next."""
    head = f"prompt,image{line_end}"
    filler = f"filler,{URL}{line_end}"
    prefix = head + filler * ((boundary - 200) // len(filler))
    tail = f",{URL}{line_end}"
    pad = "p" * (boundary - 1 - 2 - len(prefix) - len(tail)) + tail
    text = prefix + pad + f'"a{line_end}b",{URL}{line_end}after,{URL}{line_end}'
    assert text.index(f'"a{line_end}') + 2 == boundary - 1  # the break's first character
    path = write(tmp_path, text)
    whole = read_sheet(path)
    rows = list(streamed(path).rows)
    assert rows == whole.rows
    assert rows[-2].cells["prompt"] == f"a{line_end}b"
    assert rows[-1].cells["prompt"] == "after"
    assert rows[-1].line == rows[-2].line + 1  # a record's number, not its physical line
    assert len(rows) == (len(prefix) - len(head)) // len(filler) + 3


def test_utf16_and_separators_stream_too(tmp_path: Path) -> None:
    """Excel's Unicode Text (UTF-16, tab-separated) and a European semicolon CSV."""
    text = f"prompt\timage\r\nSchöne Grüße\t{URL}\r\n"
    sixteen = write(tmp_path, codecs.BOM_UTF16_LE + text.encode("utf-16-le"), "u.tsv")
    same_sheet(streamed(sixteen), read_sheet(sixteen))
    semicolons = write(tmp_path, f"prompt;image\nun café;{URL}\n", "e.csv")
    stream = streamed(semicolons)
    assert stream.notes == ("the sheet is read as semicolon-separated",)
    same_sheet(stream, read_sheet(semicolons))


def test_huge_cells_and_lines_stay_their_rows_problems(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bounds of a sheet hold for a stream: the rows are invalid, the others are read."""
    monkeypatch.setattr(textread, "MAX_CELL", 50)
    monkeypatch.setattr(textread, "MAX_LINE", 200)
    path = write(
        tmp_path,
        f"prompt,image\n{'c' * 60},{URL}\n{'l' * 300},{URL}\nfine,{URL}\n",
    )
    rows = list(streamed(path).rows)
    assert rows == read_sheet(path).rows
    assert str(rows[0].read_error).startswith("prompt: holds")
    assert "was not read" in str(rows[1].read_error)
    assert (rows[2].read_error, rows[2].cells["prompt"]) == (None, "fine")


def test_blank_header_cells_are_read_whole(tmp_path: Path) -> None:
    """An unnamed column that no row fills is dropped: only a full read can tell."""
    path = write(tmp_path, f"prompt,,image,\np,,{URL},kept\n")
    sheet = open_sheet(path)
    assert isinstance(sheet, Sheet)
    assert sheet == read_sheet(path)
    assert sheet.columns == ("prompt", "image", "column 4")


def test_other_formats_are_read_whole(tmp_path: Path) -> None:
    """JSONL takes its columns from every row: it is read whole, as before."""
    path = write(tmp_path, '{"prompt": "a"}\n{"prompt": "b", "image": "x.png"}\n', "s.jsonl")
    sheet = open_sheet(path)
    assert isinstance(sheet, Sheet)
    assert sheet.columns == ("prompt", "image")


def test_what_refuses_the_whole_sheet_is_said_before_any_row(tmp_path: Path) -> None:
    """A missing prompt column is an InputError at once, not after the rows."""
    path = write(tmp_path, f"image\n{URL}\n")
    with pytest.raises(InputError, match="prompt"):
        iter_checked(streamed(path), load_source(path))


def test_closing_a_stream_part_read_closes_the_file_and_restores_the_field_limit(
    tmp_path: Path,
) -> None:
    """A stream left before its end (validate stopped) gives back what it took at once."""
    before = csv.field_size_limit()
    path = write(tmp_path, "prompt,image\n" + "".join(f"p{n},{URL}\n" for n in range(10)))
    stream = streamed(path)
    rows = iter(stream.rows)
    assert next(rows).position == 1
    assert csv.field_size_limit() > before  # raised while the sheet is read
    stream.rows.close()
    assert csv.field_size_limit() == before
    assert list(stream.rows) == []


def test_equal_short_cells_are_shared_within_a_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sheet read whole shares repeated short cells; once the bound is reached it adds no
    more (distinct ids would fill it), and every cell still reads as written."""
    text = "prompt,image,duration,campaign\n" + "".join(
        f"p{n},{URL},{5 + n % 2 * 5},{'late' if n >= 30 else 'early'}\n" for n in range(40)
    )
    path = write(tmp_path, text)
    unbounded = read_sheet(path).rows
    assert unbounded[30].cells["campaign"] is unbounded[31].cells["campaign"]
    monkeypatch.setattr(sheet_rows, "_SHARED_MOST", 4)
    rows = read_sheet(path).rows
    assert rows == unbounded
    tens = [r.cells["duration"] for r in rows[1::2]]
    assert all(ten is tens[0] for ten in tens)  # in before the bound: shared by every row
    assert rows[30].cells["campaign"] == rows[31].cells["campaign"] == "late"
    assert rows[30].cells["campaign"] is not rows[31].cells["campaign"]  # came after the bound
