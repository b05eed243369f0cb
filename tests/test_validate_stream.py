"""`batchwan validate` checks rows as they are read and still prints what it printed whole."""

from __future__ import annotations

import codecs
import gc
import io
from pathlib import Path

import pytest
from click.testing import CliRunner

from batchwan.checks.validation import check_rows
from batchwan.cli import validate_cmd
from batchwan.cli.sheet import MAX_PRINTED_ISSUES, print_issues
from batchwan.cli.validate_cmd import validate, write_report
from batchwan.sheet.jobfile import load_source
from batchwan.sheet.loader import read_sheet
from batchwan.values import CheckedRow, RowIssue, Status
from tests.messy_sheets import MIXED_ROWS

URL = "https://images.example.com/a.jpg"
DRIVE = "https://drive.google.com/file/d/1AbCdEfGhIjKlMnOp/view?usp=sharing"

#: Titles above the header, a blank line, a repeated id and content, a cell over two lines, a
#: row with a stray cell, a share link, an escape sequence and a line break inside messages,
#: and one Windows-1252 letter: the encoding is only known once the whole file is seen.
MIXED = (
    MIXED_ROWS + f"a11,shared,{DRIVE},5,480P,5,x\n" + f'a12,caf\xe9,{URL},\x1b[31m9,480P,"1\n2",x\n'
).encode("cp1252")

#: What `validate` printed for MIXED when it read the sheet whole (before rows were streamed).
MIXED_OUT = """\
row 2 (sheet line 5): prompt: is empty; write what the video should show
row 2 (sheet line 5): duration: wan2.5-i2v-preview takes 5 or 10, got 7
row 3 (sheet line 6): id: 'a1' is also the id of row 1; give each row its own id
row 6 (sheet line 10): duplicate of row 5 (same prompt, image and settings); give it an id \
to send it again
row 7 (sheet line 11): has 8 cells but the header has 7 columns; quote cells that contain \
the separator; fix that line of the sheet
row 8 (sheet line 12): resolution: wan2.5-i2v-preview takes 480P, 720P or 1080P, got 999P
row 8 (sheet line 12): image: must be an http(s) URL, a data: URI or a path to a file beside \
the sheet, got ftp://example.com/x.jpg
row 9: would fix image: Google Drive share link sent as its download link \
https://drive.google.com/uc?export=download&id=1AbCdEfGhIjKlMnOp
row 10 (sheet line 14): duration: wan2.5-i2v-preview takes 5 or 10, got 9
row 10 (sheet line 14): seed: must be a whole number from 0 to 2147483647, got 1
2
10 rows: 4 valid, 5 invalid, 1 duplicate
"""
MIXED_ERR = """\
note: the sheet is not UTF-8; read as Windows-1252 (if letters look wrong, set `encoding:` \
in a job file, or save it as CSV UTF-8)
note: the header is on line 3; the lines above it are taken as titles and not read
"""


def invoke(*args: str) -> tuple[int, str, str]:
    """Run `batchwan validate` in-process; exit code, stdout, stderr."""
    result = CliRunner().invoke(validate, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    path = tmp_path / "mixed.csv"
    path.write_bytes(MIXED)
    return path


def test_a_mixed_sheet_prints_what_it_printed_before(mixed: Path) -> None:
    """Every problem and note, in row order, each once; the notes of the read said once."""
    assert invoke(str(mixed)) == (1, MIXED_OUT, MIXED_ERR)


def test_the_report_is_what_the_whole_sheet_gave(mixed: Path, tmp_path: Path) -> None:
    """--report holds the same rows as writing it from every checked row at once."""
    report = tmp_path / "report.csv"
    assert invoke(str(mixed), "--report", str(report))[0] == 1
    whole = tmp_path / "whole.csv"
    write_report(whole, check_rows(read_sheet(mixed), load_source(mixed)))
    assert report.read_bytes() == whole.read_bytes()
    assert report.read_bytes().count(b"\r\n") == 10  # the header and 9 problems
    assert b'got 1\n2"\r\n' in report.read_bytes()  # a message's own line break, as written


def test_output_past_the_memory_spool_is_the_same(
    mixed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When what is kept aside moves to a temporary file, not a character changes."""
    rows = "".join(f"b{n},,{URL},7,720P,{n},x\n" for n in range(300))
    big = tmp_path / "big.csv"
    big.write_bytes(MIXED + rows.encode("ascii"))
    report = tmp_path / "r.csv"
    in_memory = invoke(str(big), "--report", str(report))
    kept = report.read_bytes()
    monkeypatch.setattr(validate_cmd, "_SPOOL_BYTES", 64)
    assert invoke(str(big), "--report", str(report)) == in_memory
    assert report.read_bytes() == kept
    assert in_memory[1].startswith(MIXED_OUT.rsplit("\n", 2)[0])
    assert in_memory[1].endswith("310 rows: 4 valid, 305 invalid, 1 duplicate\n")


def test_a_sheet_unreadable_near_its_end_prints_only_its_error(tmp_path: Path) -> None:
    """Rows checked before a late unreadable byte are not printed, nor is the report written."""
    lines = "".join(f"p{n},{URL},7\n" for n in range(40_000))  # invalid rows: 7 s
    sheet = tmp_path / "s.csv"
    sheet.write_bytes(codecs.BOM_UTF8 + f"prompt,image,duration\n{lines}".encode() + b"\xff,x\n")
    report = tmp_path / "report.csv"
    report.write_text("an earlier report\n", encoding="utf-8")
    code, out, err = invoke(str(sheet), "--report", str(report))
    assert (code, out) == (2, "")
    assert err.startswith(f"Error: {sheet}: cannot be read as utf-8-sig (byte 0xff)")
    assert err.count("\n") == 1
    assert report.read_text(encoding="utf-8") == "an earlier report\n"


def test_an_unwritable_report_still_prints_every_problem(mixed: Path, tmp_path: Path) -> None:
    """As before: the problems, then why the report cannot be written, exit 2, no counts."""
    code, out, err = invoke(str(mixed), "--report", str(tmp_path / "no" / "r.csv"))
    assert code == 2
    assert out == MIXED_OUT.rsplit("10 rows:", 1)[0]
    assert err.endswith(
        f"Error: cannot write {tmp_path / 'no' / 'r.csv'}: No such file or directory\n"
    )


def test_a_valid_streamed_sheet_exits_0(tmp_path: Path) -> None:
    """All valid: only the counts, exit 0."""
    sheet = tmp_path / "s.csv"
    sheet.write_text(
        "prompt,image\n" + "".join(f"p{n},{URL}\n" for n in range(20)), encoding="utf-8"
    )
    assert invoke(str(sheet)) == (0, "20 rows: 20 valid, 0 invalid, 0 duplicates\n", "")


def _invalid(position: int) -> CheckedRow:
    issue = RowIssue(position, "prompt", "is empty; write what the video should show")
    return CheckedRow(position, f"k{position}", f"k{position}", Status.INVALID, {}, None, "0",
                      (issue,))  # fmt: skip


def test_run_prints_the_first_problems_and_counts_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`run` prints at most MAX_PRINTED_ISSUES problems, then how many more, then the counts."""
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    print_issues([_invalid(n) for n in range(1, MAX_PRINTED_ISSUES + 8)])
    lines = err.getvalue().splitlines()
    assert len(lines) == MAX_PRINTED_ISSUES + 2
    assert lines[0] == "row 1: prompt: is empty; write what the video should show"
    assert lines[MAX_PRINTED_ISSUES - 1].startswith(f"row {MAX_PRINTED_ISSUES}: ")
    assert lines[-2] == ("... and 7 more (`batchwan validate SOURCE --report FILE` lists them all)")
    assert (
        lines[-1]
        == f"{MAX_PRINTED_ISSUES + 7} rows: 0 valid, {MAX_PRINTED_ISSUES + 7} invalid, 0 duplicates"
    )


def test_validate_never_reads_a_csv_whole(mixed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """validate takes a CSV's rows from the stream: the whole-sheet reader is not used."""

    def whole(*_args: object, **_options: object) -> None:
        raise AssertionError("the sheet was read whole")

    monkeypatch.setattr("batchwan.sheet.loader.read_sheet", whole)
    monkeypatch.setattr("batchwan.sheet.loader.read_spec_sheet", whole)
    assert invoke(str(mixed)) == (1, MIXED_OUT, MIXED_ERR)


def test_the_garbage_collector_runs_again_after_validate(mixed: Path) -> None:
    """It is paused while rows are checked, and running again after, whatever the outcome."""
    assert gc.isenabled()
    invoke(str(mixed))
    assert gc.isenabled()
    broken = mixed.with_name("broken.csv")
    broken.write_bytes(codecs.BOM_UTF8 + b"prompt,image\np," + URL.encode() + b"\n\xff\n")
    assert invoke(str(broken))[0] == 2
    assert gc.isenabled()
