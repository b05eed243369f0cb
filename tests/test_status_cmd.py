"""`batchwan status` and `batchwan report`: the text, the exit codes, a folder with no run."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from recordfactory import T0, make_run, record, summary

from batchwan.cli import main
from batchwan.outputs.statusview import needs_attention, one_line, render_status
from batchwan.values import RowRecord, Status

NOW = T0 + timedelta(minutes=30)

LOST = (
    "a create was sent but its answer was lost;\n the task may or may not exist at the provider "
    "(run with --resubmit-unknown to send it again)"
)


def _records() -> list[RowRecord]:
    return [
        record(1),
        record(2),
        record(3),
        record(4, Status.FAILED, error="3001 Task Execution Error Invalid image dimensions"),
        record(5, Status.INVALID, error="duration: must be 5 or 10, got 7"),
        record(6, Status.DUPLICATE, row_id="cat-a-very-long-identifier-indeed", error="as row 2"),
        record(7, Status.UNKNOWN, error=LOST),
        record(8, Status.RUNNING, submitted_at=T0),
        record(9, Status.RUNNING, submitted_at=NOW - timedelta(minutes=1)),
        record(10, Status.PENDING),
    ]


def test_status_text_for_a_known_run() -> None:
    """The status text states counts, money, times and the rows that need attention, line by
    line; long ids and errors are cut to keep lines under 100 columns."""
    records = _records()
    text = render_status("Run runs/demo (sheet demo.csv)", records, summary(records), now=NOW)
    assert text.splitlines() == [
        "Run runs/demo (sheet demo.csv)",
        "",
        "  succeeded       3",
        "  failed          1",
        "  unknown         1",
        "  invalid         1",
        "  duplicate       1",
        "  running         2",
        "  pending         1",
        "  rows           10",
        "",
        "  cost        estimated $6.00, committed $5.00, spent $4.00, max $10.00",
        "  video       60 s (720P 50 s, 1080P 10 s)",
        "  run time    12m 05s",
        "  render      median 2m 10s, p90 4m 30s",
        "  started     2025-03-01 10:00:00 UTC",
        "  updated     2025-03-01 10:12:05 UTC",
        "",
        "By model",
        "             rows      ok  failed     video       spent   estimated",
        "  (blank)      10       3       1      40 s       $1.50       $4.00",
        "",
        "By resolution",
        "                rows      ok  failed     video       spent   estimated",
        "  720P            10       3       1      40 s       $1.50       $4.00",
        "",
        "Needs attention: 5 rows",
        "  row  id                        status     error",
        "    4  r4                        failed     "
        "3001 Task Execution Error Invalid image dimensions",
        "    5  r5                        invalid    duration: must be 5 or 10, got 7",
        "    6  cat-a-very-long-ident...  duplicate  as row 2",
        "    7  r7                        unknown    "
        "a create was sent but its answer was lost; the task...",
        "    8  r8                        running    running for 30m 00s",
    ]
    assert max(len(line) for line in text.splitlines()) <= 100


def test_status_text_without_money_cap_or_finished_rows() -> None:
    """With no cap and nothing finished yet, the cap is left out and times show as "-"."""
    records = [record(1, Status.PENDING)]
    text = render_status(
        "Run x",
        records,
        summary(records, wall_seconds=None, median=None, p90=None, max_cost=None),
        now=NOW,
    )
    assert "  cost        estimated $6.00, committed $5.00, spent $4.00\n" in text
    assert "  render      median -, p90 -\n" in text
    assert "  run time    -\n" in text
    assert "Needs attention" not in text


def test_attention_list_is_capped() -> None:
    """Past the cap, the list ends with how many more rows need attention."""
    records = [record(i, Status.FAILED, error=f"boom {i}") for i in range(1, 31)]
    lines = render_status("Run x", records, summary(records), now=NOW).splitlines()
    assert lines[-1] == "  ... and 10 more"
    assert lines[-2].startswith("   20  r20")
    assert "Needs attention: 30 rows" in lines


def test_only_long_running_tasks_need_attention() -> None:
    """A task running longer than ten minutes is listed; a younger one and pending rows are not."""
    found = needs_attention(_records(), NOW)
    assert [(a.position, a.status) for a in found] == [
        (4, "failed"),
        (5, "invalid"),
        (6, "duplicate"),
        (7, "unknown"),
        (8, "running"),
    ]


def test_sheet_text_cannot_drive_the_terminal() -> None:
    """Escape sequences and bidi overrides from a sheet are removed; line breaks become spaces."""
    assert one_line("ok\x1b[31mred\x1b[0m\u202eevil\r\nnext", 100) == "okredevil next"
    assert one_line("\x1b]0;owned\x07title \x1b]52;c;aGk=\x07clip", 100) == "title clip"


@pytest.fixture
def runner() -> CliRunner:
    """A click runner."""
    return CliRunner()


@pytest.mark.parametrize("command", ["status", "report"])
def test_folder_without_run_exits_2_with_a_clear_message(
    runner: CliRunner, tmp_path: Path, command: str
) -> None:
    """A folder that holds no run (or does not exist) exits 2 and says how to start one."""
    for folder in (tmp_path, tmp_path / "missing"):
        result = runner.invoke(main, [command, str(folder)])
        assert result.exit_code == 2
        assert f"Error: {folder} holds no batchwan run (no state.db)" in result.stderr
        assert f"batchwan run SOURCE --out {folder}" in result.stderr
    assert not (tmp_path / "report.html").exists()


def test_status_of_a_run_with_problems_exits_1(runner: CliRunner, tmp_path: Path) -> None:
    """A run with a failed, an invalid and an unsent row prints them and exits 1."""
    run_dir = make_run(tmp_path)
    result = runner.invoke(main, ["status", str(run_dir)])
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"Run {run_dir} (sheet demo.csv, wan2.5-i2v-preview)"
    for line in ("  succeeded       1", "  failed          1", "  invalid         1"):
        assert line in lines
    assert "Needs attention: 2 rows" in lines
    assert any("shot-2" in line and "3001 Task Execution Error" in line for line in lines)


def test_status_of_a_run_that_succeeded_exits_0(runner: CliRunner, tmp_path: Path) -> None:
    """When every row succeeded, status exits 0 and lists nothing to attend to."""
    run_dir = make_run(tmp_path, all_succeed=True)
    result = runner.invoke(main, ["status", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert "  succeeded       2" in result.stdout
    assert "Needs attention" not in result.stdout


def test_status_leaves_the_run_folder_unchanged(runner: CliRunner, tmp_path: Path) -> None:
    """status only reads: no file of the run is created or changed (SQLite's own -wal and -shm
    companions of state.db aside, which any reader of a WAL database may create)."""
    run_dir = make_run(tmp_path)

    def files() -> dict[str, bytes]:
        return {
            p.name: p.read_bytes()
            for p in run_dir.rglob("*")
            if p.is_file() and not p.name.endswith(("-wal", "-shm"))
        }

    before = files()
    result = runner.invoke(main, ["status", str(run_dir)])
    assert result.exit_code == 1
    assert files() == before


def test_report_command_writes_the_page_and_prints_its_path(
    runner: CliRunner, tmp_path: Path
) -> None:
    """`batchwan report RUN_DIR` writes report.html from the folder alone and prints its path."""
    run_dir = make_run(tmp_path)
    result = runner.invoke(main, ["report", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{run_dir / 'report.html'}\n"
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "<video" not in page  # rows are drawn by the script from the data blob
    assert '"videos/k1.mp4"' in page
    assert "3001 Task Execution Error Invalid image dimensions" in page


def test_pending_rows_with_a_reason_need_attention() -> None:
    """A row held back by the budget (pending, with a reason) is listed; a plain pending is not."""
    from datetime import UTC, datetime

    from batchwan.outputs.statusview import needs_attention
    from batchwan.values import RowRecord, Status

    def record(position: int, error: str | None) -> RowRecord:
        return RowRecord(position, f"k{position}", f"r{position}", Status.PENDING, 0.5, "720P",
                         5, "p", "https://x.example.com/a.jpg", error=error)  # fmt: skip

    held = record(1, "not sent: --max-cost $1.00 reached ($1.00 committed in this run folder)")
    found = needs_attention([held, record(2, None)], datetime.now(UTC))
    assert [(a.position, a.status) for a in found] == [(1, "pending")]
    assert "--max-cost" in found[0].reason
