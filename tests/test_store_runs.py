"""Record safety and continuation in whole runs against the simulator: the lock, a record lost
or removed mid-run, a copy without its -wal, the budget across resubmits, moved sheets."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from batchwan.sim.simulator import SimConfig, Simulator, serve_in_thread
from tests.runhelpers import fast_options, invoke, read_results, spawn, write_sheet


def _wait_for(predicate: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.02)


def _release_until(sim: Simulator, done: threading.Event) -> None:
    while not done.is_set():
        sim.release()
        time.sleep(0.02)


def _to_send(dry_run_output: str) -> int:
    found = re.search(r"new, would be sent\s+(\d+)", dry_run_output)
    assert found, dry_run_output
    return int(found.group(1))


def test_a_folder_with_a_past_run_but_no_record_is_refused(tmp_path: Path) -> None:
    """results.csv and run.log without state.db: exit 2, nothing sent; --new-record starts one."""
    sheet = write_sheet(tmp_path, 3)
    out = tmp_path / "run"
    with serve_in_thread(SimConfig()) as sim:
        assert invoke(["run", str(sheet), *fast_options(sim.base_url, out)]).exit_code == 0
        for name in ("state.db", "state.db-wal", "state.db-shm"):
            with contextlib.suppress(FileNotFoundError):
                (out / name).unlink()
        refused = invoke(["run", str(sheet), *fast_options(sim.base_url, out)])
        assert refused.exit_code == 2
        assert "its record (state.db) is missing" in refused.output
        assert "--new-record" in refused.output
        dry = invoke(["run", str(sheet), "--dry-run", "--out", str(out)])
        assert dry.exit_code == 2
        assert sim.sim.stats()["creates_received"] == 3
        again = invoke(["run", str(sheet), *fast_options(sim.base_url, out, "--new-record")])
        assert again.exit_code == 0, again.output
        assert sim.sim.stats()["creates_received"] == 6


def test_a_record_deleted_during_a_run_stops_it_with_exit_2(tmp_path: Path) -> None:
    """state.db, -wal and -shm removed while tasks run: the run notices, sends nothing more,
    and exits 2 saying what happened."""
    sheet = write_sheet(tmp_path, 30)
    out = tmp_path / "run"
    with serve_in_thread(SimConfig(hold=True)) as sim:
        args = fast_options(sim.base_url, out, "--concurrency", "2", "--rate", "50")
        proc = spawn(["run", str(sheet), *args])
        try:
            _wait_for(lambda: sim.sim.stats()["tasks_created"] >= 2)
            for name in ("state.db", "state.db-wal", "state.db-shm"):
                with contextlib.suppress(FileNotFoundError):
                    (out / name).unlink()
            sim.sim.release()
            _, stderr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 2, stderr
        assert b"state.db was deleted" in stderr
        assert sim.sim.stats()["creates_received"] <= 4  # the two held, at most two more


def test_a_killed_run_whose_wal_is_removed_sends_nothing_again(tmp_path: Path) -> None:
    """SIGKILL mid-run, then only state.db-wal removed: the rerun sends no row a second time
    (every sending mark and task id was folded into state.db as it happened)."""
    sheet = write_sheet(tmp_path, 40)
    out = tmp_path / "run"
    with serve_in_thread(SimConfig(hold=True)) as sim:
        args = fast_options(sim.base_url, out, "--concurrency", "6", "--rate", "50")
        proc = spawn(["run", str(sheet), *args])
        try:
            _wait_for(lambda: sim.sim.stats()["tasks_created"] >= 6)
            time.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
        (out / "state.db-wal").unlink(missing_ok=True)
        done = threading.Event()
        releaser = threading.Thread(target=_release_until, args=(sim.sim, done))
        releaser.start()  # the rerun's own tasks are held too
        try:
            result = invoke(["run", str(sheet), *fast_options(sim.base_url, out)])
        finally:
            done.set()
            releaser.join(timeout=10)
        stats = sim.sim.stats()
    assert stats["duplicate_payloads"] == 0
    statuses = {r["status"] for r in read_results(out)}
    assert statuses <= {"succeeded", "unknown"}, result.output
    assert stats["tasks_created"] == 40 - sum(r["status"] == "unknown" for r in read_results(out))


def test_the_budget_counts_creates_that_may_have_been_billed_across_resubmits(
    tmp_path: Path,
) -> None:
    """Every create's answer is lost (the task exists): with --max-cost of four rows, reruns
    with --resubmit-unknown never let a fifth create reach the provider."""
    sheet = write_sheet(tmp_path, 10)  # $0.25 a row
    out = tmp_path / "run"
    with serve_in_thread(SimConfig(drop_after_rate=1.0)) as sim:
        args = fast_options(sim.base_url, out, "--max-cost", "1", "--concurrency", "2")
        first = invoke(["run", str(sheet), *args])
        for _ in range(3):
            invoke(["run", str(sheet), *args, "--resubmit-unknown"])
        stats = sim.sim.stats()
    assert first.exit_code in (1, 4)
    assert stats["creates_received"] * 0.25 <= 1.0 + 1e-9
    assert stats["creates_received"] == 4
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["cost"]["committed"] == 1.0  # the store's count, earlier attempts included


def test_a_renamed_sheet_continues_its_run_and_the_dry_run_says_so(tmp_path: Path) -> None:
    """Run, rename the sheet, rerun on the same --out: the dry run predicts 0 creates, the run
    sends 0, and one warning line says why."""
    sheet = write_sheet(tmp_path, 5)
    out = tmp_path / "run"
    with serve_in_thread(SimConfig()) as sim:
        assert invoke(["run", str(sheet), *fast_options(sim.base_url, out)]).exit_code == 0
        renamed = sheet.rename(tmp_path / "spring-campaign.csv")
        dry = invoke(["run", str(renamed), "--dry-run", "--out", str(out)])
        assert dry.exit_code == 0, dry.output
        assert _to_send(dry.output) == 0
        assert "renamed or moved" in dry.output
        again = invoke(["run", str(renamed), *fast_options(sim.base_url, out)[:-1]])
        assert again.exit_code == 0, again.output
        assert again.output.count("renamed or moved") == 1
        assert sim.sim.stats()["creates_received"] == 5


def test_a_sheet_whose_folder_moved_continues_its_run(tmp_path: Path) -> None:
    """The sheet's folder moved (images beside it too): 0 creates again."""
    folder = tmp_path / "a"
    folder.mkdir()
    sheet = write_sheet(folder, 5)
    out = tmp_path / "run"
    with serve_in_thread(SimConfig()) as sim:
        assert invoke(["run", str(sheet), *fast_options(sim.base_url, out)]).exit_code == 0
        moved = shutil.move(folder, tmp_path / "b")
        new_sheet = Path(moved) / "sheet.csv"
        dry = invoke(["run", str(new_sheet), "--dry-run", "--out", str(out)])
        assert _to_send(dry.output) == 0
        again = invoke(["run", str(new_sheet), *fast_options(sim.base_url, out)])
        assert again.exit_code == 0, again.output
        assert sim.sim.stats()["creates_received"] == 5


def test_another_sheet_on_the_same_folder_is_refused_before_anything_is_sent(
    tmp_path: Path,
) -> None:
    """A sheet with none of the record's rows: exit 2 with advice, for the run and its dry run."""
    sheet = write_sheet(tmp_path, 5)
    (tmp_path / "x").mkdir()
    other = write_sheet(tmp_path / "x", 5, start=50)
    out = tmp_path / "run"
    with serve_in_thread(SimConfig()) as sim:
        assert invoke(["run", str(sheet), *fast_options(sim.base_url, out)]).exit_code == 0
        refused = invoke(["run", str(other), *fast_options(sim.base_url, out)])
        dry = invoke(["run", str(other), "--dry-run", "--out", str(out)])
        assert sim.sim.stats()["creates_received"] == 5
    assert refused.exit_code == 2
    assert "it is another sheet" in refused.output
    assert "choose another --out" in refused.output
    assert dry.exit_code == 2
    assert "it is another sheet" in dry.output
