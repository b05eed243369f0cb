"""Hostile and careless inputs end in a message and an exit code, never a traceback or a hang."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner
from runhelpers import invoke, write_sheet

from batchwan.cli import main
from batchwan.errors import InputError
from batchwan.sheet.jobfile import load_source
from batchwan.sheet.loader import read_sheet

# Eight levels of nine: 43 million values from 400 bytes, the "billion laughs".
_LEVELS = [("a", '"lol"'), *((b, f"*{a}") for a, b in zip("abcdefg", "bcdefgh", strict=True))]
_LAUGHS = [f"&{name} [{', '.join([item] * 9)}]" for name, item in _LEVELS]


def test_yaml_sheet_of_nested_aliases_is_refused(tmp_path: Path) -> None:
    """A YAML sheet whose aliases expand a millionfold is an InputError, not gigabytes of text."""
    sheet = tmp_path / "laughs.yaml"
    anchors = "".join(
        f"{name}: {value}\n" for (name, _), value in zip(_LEVELS, _LAUGHS, strict=True)
    )
    sheet.write_text(anchors + "rows:\n  - prompt: *h\n    image: a.jpg\n", encoding="utf-8")
    with pytest.raises(InputError, match="aliases"):
        read_sheet(sheet)


def test_job_file_of_nested_aliases_is_refused(tmp_path: Path) -> None:
    """A job file whose aliases expand a millionfold is refused before any value is printed."""
    body = "".join(f"  - {value}\n" for value in _LAUGHS)
    job = tmp_path / "job.yaml"
    job.write_text(f"sheet: s.csv\nmodel:\n{body}", encoding="utf-8")
    with pytest.raises(InputError, match="aliases"):
        load_source(job)


def test_yaml_merge_keys_in_every_row_are_still_read(tmp_path: Path) -> None:
    """`<<: *defaults` in each row is ordinary YAML and stays within the alias allowance."""
    rows = "".join(f"  - {{<<: *d, prompt: p{i}}}\n" for i in range(200))
    sheet = tmp_path / "merged.yaml"
    sheet.write_text(
        "base: &d {image: a.jpg, duration: 5, resolution: 720P, seed: 1}\nrows:\n" + rows,
        encoding="utf-8",
    )
    assert len(read_sheet(sheet).rows) == 200


def test_xlsx_with_a_stray_far_corner_cell_reads_only_real_rows(tmp_path: Path) -> None:
    """One cell at XFD1048576 does not make the loader walk 17 billion padded cells."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["prompt", "image"])
    sheet.append(["a cat walks", "https://images.example.com/a.jpg"])
    sheet["XFD1048576"] = " "
    path = tmp_path / "stray.xlsx"
    book.save(path)
    read = read_sheet(path)
    assert read.columns == ("prompt", "image")
    assert [row.cells["prompt"] for row in read.rows] == ["a cat walks"]


def test_folder_named_like_a_sheet_says_it_is_a_folder(tmp_path: Path) -> None:
    """A folder given as the sheet is named a folder, not 'a file without an extension'."""
    for name in ("sheets", "book.xlsx"):
        (tmp_path / name).mkdir()
        with pytest.raises(InputError, match="is a folder, not a sheet"):
            read_sheet(tmp_path / name)


def test_job_file_numbers_written_yaml_1_1_style_are_numbers(tmp_path: Path) -> None:
    """`max_cost: 1e3` (text to YAML 1.1) is the number the person meant."""
    job = tmp_path / "job.yaml"
    job.write_text("sheet: s.csv\nmax_cost: 1e3\nrate: 5e-1\n", encoding="utf-8")
    spec = load_source(job)
    assert (spec.max_cost, spec.rate) == (1000.0, 0.5)


def test_run_folder_under_a_file_exits_2_with_a_message(tmp_path: Path) -> None:
    """--out below a plain file exits 2 naming the folder, and no traceback."""
    sheet = write_sheet(tmp_path, 1)
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder", encoding="utf-8")
    result = invoke(["run", str(sheet), "--simulate", "--out", str(blocker / "run"), "-q"])
    assert result.exit_code == 2, result.output
    assert f"{blocker / 'run'}: cannot be used as a run folder: Not a directory" in result.stderr
    assert blocker.read_text(encoding="utf-8") == "not a folder"


@pytest.mark.parametrize("command", ["status", "report"])
def test_damaged_state_db_is_named_without_suggesting_a_new_run(
    tmp_path: Path, command: str
) -> None:
    """A state.db of random bytes exits 2, says it is unreadable, and does not say 'start one'."""
    (tmp_path / "state.db").write_bytes(bytes(range(256)) * 20)
    result = CliRunner().invoke(main, [command, str(tmp_path)])
    assert result.exit_code == 2
    assert "state.db: the run's record cannot be read" in result.stderr
    assert "not a batchwan run folder" in result.stderr
    assert "start one" not in result.stderr
    assert not (tmp_path / "report.html").exists()


def test_validate_report_never_overwrites_the_sheet_or_job_file(tmp_path: Path) -> None:
    """--report naming the sheet or the job file exits 2 and leaves both untouched."""
    sheet = write_sheet(tmp_path, 2)
    job = tmp_path / "job.yaml"
    job.write_text(f"sheet: {sheet.name}\n", encoding="utf-8")
    before = sheet.read_bytes(), job.read_bytes()
    for source, report in (
        (sheet, sheet),
        (job, sheet),
        (job, job),
        (job, tmp_path / "." / "job.yaml"),
    ):
        result = CliRunner().invoke(main, ["validate", str(source), "--report", str(report)])
        assert result.exit_code == 2, result.output
        assert f"--report {report} would overwrite" in result.stderr
    assert (sheet.read_bytes(), job.read_bytes()) == before
