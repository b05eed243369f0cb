"""`batchwan run` as a separate process: interrupted, terminated and killed at random instants."""

from __future__ import annotations

import random
import re
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from batchwan.sim.simulator import SimConfig, Simulator, serve_in_thread
from tests.runhelpers import KEY, fast_options, invoke, read_results, spawn, write_sheet


def _wait_for(predicate: Callable[[], object], timeout: float = 30.0) -> None:
    """Poll a condition (bounded); fail the test if it never holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail("condition not reached in time")
        time.sleep(0.05)


def _release_until(sim: Simulator, done: threading.Event) -> None:
    """Release every held task, again and again, until told to stop."""
    while not done.wait(0.05):
        sim.release()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_saves_state_exits_130_and_the_next_run_collects(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """Ctrl-C or SIGTERM mid-run: exit 130, task ids kept; the next run collects, resending none."""
    sheet = write_sheet(tmp_path, 6)
    out = tmp_path / "run"
    with serve_in_thread(SimConfig(hold=True, api_key=KEY)) as sim:
        args = ["run", str(sheet), *fast_options(sim.base_url, out, "--concurrency", "4")]
        proc = spawn(args)
        try:
            _wait_for(lambda: sim.sim.stats()["tasks_created"] >= 4)
            proc.send_signal(sig)
            _, stderr = proc.communicate(timeout=30)
        finally:
            proc.kill()
        assert proc.returncode == 130, stderr.decode()
        assert b"Traceback" not in stderr
        rows = read_results(out)
        assert Counter(r["status"] for r in rows) == {"running": 4, "pending": 2}
        assert all(r["task_id"] for r in rows if r["status"] == "running")
        done = threading.Event()
        releaser = threading.Thread(target=_release_until, args=(sim.sim, done))
        releaser.start()  # held tasks created by the next run must be released too
        try:
            again = invoke(args)
        finally:
            done.set()
            releaser.join(timeout=10)
        assert again.exit_code == 0, again.output
        assert sim.sim.stats()["creates_received"] == 6
    assert {r["status"] for r in read_results(out)} == {"succeeded"}


@pytest.mark.slow
def test_sigkill_at_random_instants_loses_nothing_and_bills_nothing_twice(tmp_path: Path) -> None:
    """SIGKILL at seeded random instants, restart until done: every row succeeds, and the
    simulator saw no duplicate payload beyond rows reported `unknown` and explicitly resubmitted."""
    rows_in_sheet = 200
    sheet = write_sheet(tmp_path, rows_in_sheet)
    out = tmp_path / "run"
    rng = random.Random(20261125)
    config = SimConfig(
        seed=13, api_key=KEY, pending_seconds=0.05, processing_seconds=0.3,
        slow_rate=0.3, slow_seconds=0.3,
    )  # fmt: skip
    resubmitted = 0
    kills = 0
    with serve_in_thread(config) as sim:
        args = ["run", str(sheet), *fast_options(sim.base_url, out, "--concurrency", "8",
                                                 "--rate", "10")]  # fmt: skip
        for _ in range(12):
            proc = spawn(args)
            try:
                proc.wait(timeout=rng.uniform(0.8, 3.5))
            except subprocess.TimeoutExpired:
                proc.kill()
                kills += 1
            proc.communicate(timeout=30)
        for _ in range(6):  # then let it finish, resubmitting what was reported unknown
            result = invoke(args)
            statuses = Counter(r["status"] for r in read_results(out))
            if statuses["unknown"]:
                resubmitted += statuses["unknown"]
                result = invoke([*args, "--resubmit-unknown"])
            if result.exit_code == 0:
                break
        stats = sim.sim.stats()
    assert kills >= 8  # most instants fell mid-run
    final = read_results(out)
    assert [r["status"] for r in final] == ["succeeded"] * rows_in_sheet
    assert stats["duplicate_payloads"] <= resubmitted
    assert stats["tasks_created"] <= rows_in_sheet + resubmitted


def test_status_works_while_a_run_is_in_progress(tmp_path: Path) -> None:
    """`status` reads a run folder that a live run is writing: running rows, exit 1."""
    sheet = write_sheet(tmp_path, 4)
    out = tmp_path / "run"
    with serve_in_thread(SimConfig(hold=True, api_key=KEY)) as sim:
        proc = spawn(["run", str(sheet), *fast_options(sim.base_url, out, "--concurrency", "2")])
        try:
            _wait_for(lambda: sim.sim.stats()["tasks_created"] >= 2)
            _wait_for(lambda: (out / "results.csv").is_file())
            during = invoke(["status", str(out)])
            assert proc.poll() is None  # the run is still going
        finally:
            proc.kill()
            proc.communicate(timeout=30)
    assert during.exit_code == 1, during.output
    assert re.search(r"^\s+running\s+2$", during.output, re.M)
    assert re.search(r"^\s+pending\s+2$", during.output, re.M)
