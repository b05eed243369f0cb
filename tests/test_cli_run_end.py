"""`batchwan run`: a dry run writes nothing, the end of a run says what really happened."""

from __future__ import annotations

import errno
import json
import os
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from batchwan.sim.simulator import SimConfig, serve_in_thread
from batchwan.store.records import read_records
from batchwan.values import Status
from tests.runhelpers import KEY, fast_options, invoke, read_results, spawn, write_sheet


def _wait_for(predicate: Callable[[], object], timeout: float = 30.0) -> None:
    """Poll a condition (bounded); fail the test if it never holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail("condition not reached in time")
        time.sleep(0.05)


def test_dry_run_with_fix_images_writes_nothing(tmp_path: Path) -> None:
    """--dry-run --fix-images says what it would fix, and creates no run folder and no file."""
    Image.new("RGB", (2400, 1200), (30, 90, 160)).save(tmp_path / "big.png")
    sheet = tmp_path / "s.csv"
    sheet.write_text("prompt,image\na wide harbour at dawn,big.png\n", encoding="utf-8")
    before = sorted(p.name for p in tmp_path.iterdir())
    out = tmp_path / "run"
    result = invoke(["run", str(sheet), "--out", str(out), "--dry-run", "--fix-images"])
    assert result.exit_code == 0, result.output
    assert "resized" in result.output
    assert "1 valid" in result.output
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_full_disk_at_the_final_write_keeps_the_outcome_and_the_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC on the last results.csv write: a clear message, the run's own exit code (0 here),
    no traceback, and the record holds every row as succeeded."""
    real_replace = os.replace

    def full_disk(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(dst).name in ("results.csv", "summary.json"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", full_disk)
    sheet = write_sheet(tmp_path, 3)
    out = tmp_path / "run"
    with serve_in_thread(SimConfig(pending_seconds=0, processing_seconds=0)) as sim:
        result = invoke(["run", str(sheet), *fast_options(sim.base_url, out)])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert (
        "warning: could not write results.csv or summary.json: No space left on device; "
        "the record (state.db) is intact; free some space and run again to write them"
    ) in result.stderr
    assert [r.status for r in read_records(out)] == [Status.SUCCEEDED] * 3
    assert not (out / "results.csv").exists()


def test_ctrl_c_during_the_final_report_does_not_claim_nothing_was_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGINT while the report is written: the run had ended, so it reports its real outcome."""
    import batchwan.outputs.report as report

    real_write = report.write_report

    def interrupted_write(run_dir: Path) -> Path:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # let the signal land while the report is being written
        return real_write(run_dir)

    monkeypatch.setattr(report, "write_report", interrupted_write)
    sheet = write_sheet(tmp_path, 2)
    out = tmp_path / "run"
    with serve_in_thread(SimConfig(pending_seconds=0, processing_seconds=0)) as sim:
        args = ["run", str(sheet), *fast_options(sim.base_url, out)]
        result = invoke([a for a in args if a != "--quiet"])
    assert "before anything was sent" not in result.output
    assert result.exit_code == 0, result.output
    assert "2 rows: 2 succeeded" in result.stdout
    assert {r["status"] for r in read_results(out)} == {"succeeded"}


def test_an_interrupted_run_says_the_command_that_continues_it(tmp_path: Path) -> None:
    """Ctrl-C mid-run: exit 130, and the last words name the exact command to continue."""
    sheet = write_sheet(tmp_path, 4)
    out = tmp_path / "run"
    with serve_in_thread(SimConfig(hold=True, api_key=KEY)) as sim:
        args = ["run", str(sheet), *fast_options(sim.base_url, out)]
        proc = spawn([a for a in args if a != "--quiet"])
        try:
            _wait_for(lambda: sim.sim.stats()["tasks_created"] >= 2)
            proc.send_signal(signal.SIGINT)
            stdout, stderr = proc.communicate(timeout=30)
        finally:
            proc.kill()
    assert proc.returncode == 130, stderr.decode()
    command = f"batchwan run {sheet} --out {out} --base-url {sim.base_url}"
    assert stdout.decode().splitlines()[-1] == f"to continue: {command}"


def _poll_interval_used(out: Path) -> float:
    with sqlite3.connect(out / "state.db") as conn:
        (options,) = conn.execute("SELECT options FROM runs ORDER BY number DESC").fetchone()
    return float(json.loads(options)["poll_interval"])


@pytest.mark.parametrize(
    ("extra", "expected"), [((), 0.2), (("--poll-interval", "0.3"), 0.3)], ids=["pace", "given"]
)
def test_simulate_polls_at_the_simulators_pace_unless_told(
    tmp_path: Path, extra: tuple[str, ...], expected: float
) -> None:
    """run --simulate on a bare sheet polls every 0.2 s, not the provider's 20 s; an explicit
    --poll-interval wins."""
    sheet = write_sheet(tmp_path, 1)
    out = tmp_path / "run"
    result = invoke(["run", str(sheet), "--simulate", "--out", str(out), "-q", *extra], key=None)
    assert result.exit_code == 0, result.output
    assert _poll_interval_used(out) == expected


def test_simulate_keeps_the_job_files_poll_interval(tmp_path: Path) -> None:
    """A job file's poll_interval is the user's choice, --simulate or not."""
    write_sheet(tmp_path, 1)
    job = tmp_path / "job.yaml"
    job.write_text("sheet: sheet.csv\npoll_interval: 0.5\n", encoding="utf-8")
    out = tmp_path / "run"
    result = invoke(["run", str(job), "--simulate", "--out", str(out), "-q"], key=None)
    assert result.exit_code == 0, result.output
    assert _poll_interval_used(out) == 0.5
