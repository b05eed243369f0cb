"""Encodings, separators and workbook details, one behaviour each."""

from __future__ import annotations

import codecs
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from batchwan.errors import InputError
from batchwan.sheet import workbook
from batchwan.sheet.jobfile import load_source
from batchwan.sheet.loader import read_sheet
from batchwan.sheet.textread import detect_encoding, sniff_delimiter

URL = "https://images.example.com/a.jpg"


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (b"prompt\ncaf\xc3\xa9\n", "utf-8"),
        (codecs.BOM_UTF8 + b"prompt\n", "utf-8-sig"),
        (codecs.BOM_UTF16_LE + "prompt\n".encode("utf-16-le"), "utf-16"),
        (codecs.BOM_UTF16_BE + "prompt\n".encode("utf-16-be"), "utf-16"),
        (codecs.BOM_UTF32_LE + "prompt\n".encode("utf-32-le"), "utf-32"),
        ("prompt,image\nä,b\n".encode("utf-16-le"), "utf-16-le"),
        ("prompt,image\nä,b\n".encode("utf-16-be"), "utf-16-be"),
        (b"prompt\ncaf\xe9 \x93quoted\x94\n", "cp1252"),
        (b"prompt\ncaf\xe9 \x81\n", "latin-1"),  # 0x81 is not a Windows-1252 character
    ],
)
def test_the_encoding_rule(tmp_path: Path, data: bytes, encoding: str) -> None:
    """BOMs first, then strict UTF-8, then Windows-1252, then Latin-1."""
    path = tmp_path / "s.csv"
    path.write_bytes(data)
    assert detect_encoding(path)[0] == encoding


@pytest.mark.parametrize(
    ("line", "separator"),
    [
        ("prompt,image,seed", ","),
        ("prompt;image;seed", ";"),
        ("prompt\timage\tseed", "\t"),
        ("prompt|image", "|"),
        ('"a;b",image,seed', ","),
        ("prompt", ","),
    ],
)
def test_the_separator_is_the_headers_most_common(line: str, separator: str) -> None:
    """Comma, semicolon, tab or pipe: whichever the header line holds most (comma on a tie)."""
    assert sniff_delimiter(line) == separator


def test_old_mac_line_ends_are_lines(tmp_path: Path) -> None:
    """A CSV with CR-only line ends (old Excel for Mac) reads row by row."""
    path = tmp_path / "s.csv"
    path.write_bytes(f"prompt,image\ra,{URL}\rb,{URL}\r".encode())
    assert [(r.cells["prompt"], r.line) for r in read_sheet(path).rows] == [("a", 2), ("b", 3)]


def test_a_forced_encoding_that_does_not_fit_says_so(tmp_path: Path) -> None:
    """`encoding: utf-8` on a Windows-1252 file: one error naming the byte and the fix."""
    path = tmp_path / "s.csv"
    path.write_bytes(b"prompt,image\ncaf\xe9,x\n")
    with pytest.raises(InputError) as info:
        read_sheet(path, encoding="utf-8")
    assert str(info.value) == (
        f"{path}: cannot be read as utf-8 (byte 0xe9); set `encoding:` in a job file to the "
        "sheet's encoding, or save it as CSV UTF-8"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("encoding: klingon", "`encoding:` 'klingon' is not an encoding Python knows"),
        ("delimiter: x", "`delimiter:` must be one of , ; | or tab, got 'x'"),
        ("limit: 0", "`limit:` must be a whole number of at least 1, got 0"),
        ("include_hidden: maybe", "`include_hidden:` must be true or false, got 'maybe'"),
        ("allow_repeat: 1", "`allow_repeat:` must be true or false, got 1"),
        ("tab: ''", "`tab:` must be text"),
    ],
)
def test_bad_sheet_keys_in_a_job_file(tmp_path: Path, text: str, message: str) -> None:
    """Each new job-file key refuses a value it cannot use, naming the key."""
    job = tmp_path / "job.yaml"
    job.write_text(f"sheet: s.csv\n{text}\n", encoding="utf-8")
    with pytest.raises(InputError, match="^" + str(job) + ": " + message.replace("|", r"\|")):
        load_source(job)


def test_job_file_sheet_keys_are_read(tmp_path: Path) -> None:
    """image_root, tab, include_hidden, encoding, delimiter, limit and allow_repeat."""
    job = tmp_path / "jobs" / "job.yaml"
    job.parent.mkdir()
    job.write_text(
        "sheet: ../s.xlsx\nimage_root: ../pictures\ntab: Shots\ninclude_hidden: true\n"
        "encoding: windows-1252\ndelimiter: semicolon\nlimit: 10\nallow_repeat: true\n",
        encoding="utf-8",
    )
    spec = load_source(job)
    assert (spec.image_root, spec.tab, spec.include_hidden) == (
        tmp_path / "pictures",
        "Shots",
        True,
    )
    assert (spec.encoding, spec.delimiter, spec.limit, spec.allow_repeat) == (
        "cp1252",
        ";",
        10,
        True,
    )


def test_tab_is_for_workbooks_only(tmp_path: Path) -> None:
    """--tab on a CSV is refused rather than ignored."""
    path = tmp_path / "s.csv"
    path.write_text(f"prompt,image\na,{URL}\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"--tab 'x' is for \.xlsx workbooks"):
        read_sheet(path, tab="x")


def _book(path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["prompt", "image", "seed"])
    sheet.append(["a", URL, "=1+1"])
    sheet.append(["b", URL, 3])
    book.save(path)


def test_a_formula_without_a_saved_value_is_an_invalid_row(tmp_path: Path) -> None:
    """A formula no program ever computed is not read as empty: its row says what to do."""
    _book(tmp_path / "s.xlsx")
    rows = read_sheet(tmp_path / "s.xlsx").rows
    assert rows[0].read_error == (
        "cell C2: holds the formula =1+1 with no saved value; open and save the workbook in "
        "Excel (or paste the values)"
    )
    assert rows[1].read_error is None
    assert rows[1].cells["seed"] == "3"


def test_a_large_workbook_is_read_row_by_row_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above the whole-load size, rows are still read, and the note says what was not looked at."""
    _book(tmp_path / "s.xlsx")
    monkeypatch.setattr(workbook, "MAX_WHOLE", 100)
    sheet = read_sheet(tmp_path / "s.xlsx")
    assert [r.cells["prompt"] for r in sheet.rows] == ["a", "b"]
    assert sheet.notes[0].startswith("the workbook is large (")
    assert sheet.notes[0].endswith("without looking for hidden rows, merged cells or links")


_cp1252_text = st.text(
    alphabet=st.characters(codec="cp1252", blacklist_categories=("Cs", "Cc")), max_size=20
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cells=st.lists(st.lists(_cp1252_text, min_size=3, max_size=3), min_size=1, max_size=6),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "utf-16"]),
    separator=st.sampled_from([",", ";", "\t"]),
)
def test_any_cells_in_any_encoding_and_separator_come_back(
    tmp_path: Path, cells: list[list[str]], encoding: str, separator: str
) -> None:
    """Written by the csv module in any of these encodings and separators: read back as typed."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=separator, quoting=csv.QUOTE_ALL)
    writer.writerow(["prompt", "image", "notes"])
    writer.writerows(cells)
    data = buffer.getvalue().encode(encoding)
    if encoding == "cp1252" and not data.isascii():
        # Windows-1252 bytes that also happen to be valid UTF-8 ("Ã©") read as UTF-8: the rule
        # says so, and no rule can tell them apart.
        try:
            data.decode("utf-8")
            assume(False)
        except UnicodeDecodeError:
            pass
    path = tmp_path / "h.csv"
    path.write_bytes(data)
    sheet = read_sheet(path)
    kept = [row for row in cells if any(c.strip() for c in row)]
    assert [[r.cells[k] for k in ("prompt", "image", "notes")] for r in sheet.rows] == kept
