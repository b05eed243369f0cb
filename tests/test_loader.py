"""The loader: every sheet format, cells as typed, positions, row-level and file-level errors."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchwan.errors import InputError
from batchwan.sheet.loader import SHEET_SUFFIXES, Sheet, read_sheet

HEADER = ["id", "prompt", "seed", "duration", "notes"]
ROWS = [
    ["a1", "A cat, walking", "007", "5.0", ""],
    ["a2", 'He said "hi"', "42", "10", "multi\nline"],
]


def write_xlsx(path: Path, rows: list[list[object]]) -> None:
    """Write rows to the first sheet of a workbook."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    book.save(path)
    book.close()


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    """Write a file into tmp_path and return its path."""
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return path


def csv_text(rows: list[list[str]], sep: str = ",") -> str:
    """A CSV/TSV text with every cell quoted."""
    out = []
    for row in rows:
        out.append(sep.join('"' + c.replace('"', '""') + '"' for c in row))
    return "\r\n".join(out) + "\r\n"


def as_cells(sheet: Sheet) -> list[dict[str, str]]:
    """The cells of every row."""
    return [row.cells for row in sheet.rows]


EXPECTED = [dict(zip(HEADER, row, strict=True)) for row in ROWS]


def _jsonl(rows: list[list[str]]) -> str:
    return "\n".join(json.dumps(dict(zip(HEADER, r, strict=True))) for r in rows) + "\n"


def _yaml_list(rows: list[list[str]]) -> str:
    return json.dumps([dict(zip(HEADER, r, strict=True)) for r in rows])  # JSON is YAML


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("s.csv", csv_text([HEADER, *ROWS])),
        ("s.tsv", csv_text([HEADER, *ROWS], "\t")),
        ("s.jsonl", _jsonl(ROWS)),
        ("s.yaml", _yaml_list(ROWS)),
        ("s.yml", json.dumps({"rows": [dict(zip(HEADER, r, strict=True)) for r in ROWS]})),
    ],
)
def test_every_text_format_reads_the_same_cells(tmp_path: Path, name: str, text: str) -> None:
    """CSV, TSV, JSONL and both YAML shapes give the same cells, as typed."""
    sheet = read_sheet(write(tmp_path, name, text))
    assert as_cells(sheet) == EXPECTED
    assert sheet.columns == tuple(HEADER)
    assert [r.position for r in sheet.rows] == [1, 2]


def test_xlsx_reads_numbers_as_typed(tmp_path: Path) -> None:
    """XLSX: whole numbers lose Excel's float form, booleans read true/false, empty is ''."""
    path = tmp_path / "s.xlsx"
    write_xlsx(path, [["prompt", "seed", "duration", "audio", "notes"], ["x", 42, 5.0, True, None]])
    sheet = read_sheet(path)
    assert as_cells(sheet) == [
        {"prompt": "x", "seed": "42", "duration": "5", "audio": "true", "notes": ""}
    ]


def test_csv_keeps_bom_free_header_and_leading_zeros(tmp_path: Path) -> None:
    """A UTF-8 BOM is dropped from the first header; 007 stays 007; empty stays ''."""
    path = write(tmp_path, "s.csv", "\ufeffid,seed,prompt\n001,007,\n")
    sheet = read_sheet(path)
    assert sheet.columns == ("id", "seed", "prompt")
    assert as_cells(sheet) == [{"id": "001", "seed": "007", "prompt": ""}]


def test_blank_csv_rows_are_skipped_and_take_no_position(tmp_path: Path) -> None:
    """Blank lines and rows of bare commas are skipped; the rest are numbered 1..n."""
    path = write(tmp_path, "s.csv", "prompt,seed\n\na,1\n,\n  ,  \nb,2\n,,\n")
    sheet = read_sheet(path)
    assert [(r.position, r.cells["prompt"]) for r in sheet.rows] == [(1, "a"), (2, "b")]


def test_short_rows_are_padded_and_long_rows_are_row_errors(tmp_path: Path) -> None:
    """A row with too few cells is padded; one with more cells than headers has a read_error."""
    path = write(tmp_path, "s.csv", "prompt,seed\na\nb,1,extra\nc,2,\n")
    rows = read_sheet(path).rows
    assert rows[0].cells == {"prompt": "a", "seed": ""}
    assert rows[0].read_error is None
    assert rows[1].read_error == (
        "has 3 cells but the header has 2 columns; quote cells that contain the separator"
    )
    assert rows[2].read_error is None  # a trailing empty cell is harmless


def test_unnamed_empty_columns_are_dropped(tmp_path: Path) -> None:
    """Trailing separators in the header add no column unless a row fills it."""
    assert read_sheet(write(tmp_path, "a.csv", "prompt,\nx,\n")).columns == ("prompt",)
    assert read_sheet(write(tmp_path, "b.csv", "prompt,\nx,y\n")).columns == (
        "prompt",
        "column 2",
    )


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("{not json", "line 2 is not valid JSON"),
        ("[1, 2]", "line 2 is a JSON list, not an object {...}"),
        ('"text"', "line 2 is a JSON str, not an object {...}"),
    ],
)
def test_jsonl_bad_line_is_a_problem_of_that_row(tmp_path: Path, line: str, error: str) -> None:
    """A JSONL line that is not an object fails that row only; others still load."""
    path = write(tmp_path, "s.jsonl", f'{{"prompt": "a"}}\n{line}\n{{"prompt": "b"}}\n')
    rows = read_sheet(path).rows
    assert [r.position for r in rows] == [1, 2, 3]
    assert rows[1].read_error is not None
    assert rows[1].read_error.startswith(error)
    assert rows[2].cells == {"prompt": "b"}


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("true", "true"),
        ("5", "5"),
        ("5.0", "5.0"),
        ("null", ""),
        ("0123", "0123"),
        ("1_000", "1_000"),
        ("yes", "yes"),
        ("2024-01-02", "2024-01-02"),
        ('"quoted"', "quoted"),
        ("!!int 7", "7"),
        ("[1, 2]", '["1", "2"]'),
    ],
)
def test_yaml_scalars_become_the_text_typed(tmp_path: Path, value: str, text: str) -> None:
    """YAML cells keep what was typed; null is empty; no YAML 1.1 octal or boolean guessing."""
    sheet = read_sheet(write(tmp_path, "s.yaml", f"- prompt: x\n  seed: {value}\n"))
    assert sheet.rows[0].cells["seed"] == text


@pytest.mark.parametrize(
    ("value", "text"),
    [("true", "true"), ("5", "5"), ("5.0", "5.0"), ("null", ""), ('"007"', "007")],
)
def test_jsonl_scalars_become_their_text(tmp_path: Path, value: str, text: str) -> None:
    """JSON scalars become the text a person would write."""
    sheet = read_sheet(write(tmp_path, "s.jsonl", f'{{"seed": {value}}}\n'))
    assert sheet.rows[0].cells["seed"] == text


def test_yaml_rows_with_defaults(tmp_path: Path) -> None:
    """A mapping with rows: and defaults: gives both; non-mapping items are row errors."""
    text = "defaults:\n  resolution: 1080p\n  duration: 10\nrows:\n  - prompt: a\n  - 5\n  -\n"
    sheet = read_sheet(write(tmp_path, "s.yaml", text))
    assert sheet.defaults == {"resolution": "1080p", "duration": "10"}
    assert sheet.rows[0].cells == {"prompt": "a"}
    assert sheet.rows[1].read_error == "item 2 is a str, not a mapping"
    assert sheet.rows[2].read_error == "item 3 is empty, not a mapping"


def test_jsonl_lines_end_only_at_newline(tmp_path: Path) -> None:
    """A value holding a raw U+2028 stays one row; CRLF line ends work too."""
    path = write(tmp_path, "s.jsonl", '{"prompt": "a\u2028b"}\r\n{"prompt": "c"}\r\n')
    assert as_cells(read_sheet(path)) == [{"prompt": "a\u2028b"}, {"prompt": "c"}]


def test_columns_follow_first_appearance(tmp_path: Path) -> None:
    """JSONL/YAML columns are in order of first appearance across rows."""
    path = write(tmp_path, "s.jsonl", '{"b": 1, "a": 2}\n\n{"c": 3, "a": 4}\n')
    sheet = read_sheet(path)
    assert sheet.columns == ("b", "a", "c")
    assert [r.position for r in sheet.rows] == [1, 2]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.csv", None, "missing.csv: no such file"),
        ("s.txt", "a,b\n", "cannot read a .txt file as a sheet"),
        ("s.csv", "", "has no header row"),
        ("s.csv", "a,a\n1,2\n", "column 'a' appears twice in the header"),
        ("s.yaml", "a: [1\n", "is not valid YAML"),
        ("s.yaml", "just text\n", "a YAML sheet must be a list of rows"),
        ("s.yaml", "sheet: x.csv\n", "is a job file, not a sheet"),
        ("s.yaml", "rows: []\ndefaults: 5\n", "`defaults:` must be a mapping"),
        ("s.xlsx", b"not a zip", "is not an XLSX workbook"),
        ("s.xlsx", None, "s.xlsx: no such file"),
    ],
)
def test_unreadable_files_raise_one_clear_input_error(
    tmp_path: Path, name: str, content: str | bytes | None, message: str
) -> None:
    """A file that cannot be read at all names the file and the reason."""
    path = tmp_path / name if content is None else write(tmp_path, name, content)
    with pytest.raises(InputError, match="^.*" + message.replace("(", r"\(").replace(")", r"\)")):
        read_sheet(path)
    with pytest.raises(InputError) as info:
        read_sheet(path)
    assert name in str(info.value)


def test_folder_is_an_input_error(tmp_path: Path) -> None:
    """A folder given as a sheet is refused cleanly."""
    folder = tmp_path / "d.csv"
    folder.mkdir()
    with pytest.raises(InputError, match="is a folder"):
        read_sheet(folder)


def test_header_only_sheet_has_no_rows(tmp_path: Path) -> None:
    """A header with no data rows is a sheet of zero rows, not an error."""
    sheet = read_sheet(write(tmp_path, "s.csv", "prompt,image\n"))
    assert sheet.rows == []
    assert sheet.columns == ("prompt", "image")


_cell = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cells=st.lists(st.lists(_cell, min_size=3, max_size=3), min_size=1, max_size=8))
def test_any_cell_text_survives_a_csv_round_trip(tmp_path: Path, cells: list[list[str]]) -> None:
    """Whatever text is in a CSV cell comes back unchanged, in the right row."""
    import csv

    path = tmp_path / "h.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["a", "b", "c"], *cells])
    sheet = read_sheet(path)
    kept = [row for row in cells if any(c.strip() for c in row)]
    assert [[r.cells[k] for k in "abc"] for r in sheet.rows] == kept


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=300), suffix=st.sampled_from(SHEET_SUFFIXES))
def test_any_bytes_give_rows_or_one_input_error(tmp_path: Path, data: bytes, suffix: str) -> None:
    """Arbitrary bytes in any sheet format load or raise InputError, never anything else."""
    path = tmp_path / f"h{suffix}"
    path.write_bytes(data)
    try:
        sheet = read_sheet(path)
    except InputError as exc:
        message = str(exc)
    else:
        message = f"{path}: loaded"
        assert [r.position for r in sheet.rows] == list(range(1, len(sheet.rows) + 1))
    assert message.startswith(f"{path}: ")
