"""Many `batchwan run` processes on one sheet and one PostgreSQL store form one run."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from batchwan.sim.simulator import SimConfig, serve_in_thread
from tests.runhelpers import KEY, invoke, read_results, write_sheet

#: Short leases, so the runners notice a killed one within seconds.
LEASE = "2"


def _spawn(sheet: Path, out: Path, url: str, base_url: str, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MULEROUTER_API_KEY": KEY, "BATCHWAN_LEASE_SECONDS": LEASE}
    env.pop("BATCHWAN_BASE_URL", None)
    args = [
        sys.executable, "-m", "batchwan", "run", str(sheet), "--store", url, "--out", str(out),
        "--base-url", base_url, "--poll-interval", "0.05", "--quiet", *extra,
    ]  # fmt: skip
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish(procs: list[subprocess.Popen[bytes]], timeout: float = 90) -> list[int]:
    """Each runner's exit code (a code other than 0 is printed with the end of its stderr)."""
    codes = []
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            raise AssertionError(f"a runner did not finish: {err.decode()[-2000:]}") from None
        assert proc.returncode in (0, 1, 4), err.decode()[-2000:]
        if proc.returncode:
            said = (out + err).decode(errors="replace")[-2000:]
            print(f"runner exited {proc.returncode}: {said}")
        codes.append(proc.returncode)
    return codes


def test_three_runners_share_one_run_within_the_accounts_limits(
    tmp_path: Path, pg_url: str
) -> None:
    """600 rows, three runners, --concurrency 6 --rate 40: every row once, all succeeded,
    never more than 6 tasks in flight or 40 creates in a second at the provider."""
    sheet = write_sheet(tmp_path, 600)
    # Tasks that take a tenth of a second, so that "in flight" is something the simulator sees.
    with serve_in_thread(SimConfig(processing_seconds=0.1)) as sim:
        limits = ("--concurrency", "6", "--rate", "40")
        procs = [
            _spawn(sheet, tmp_path / f"m{i}" / "spring", pg_url, sim.base_url, *limits)
            for i in range(3)
        ]
        codes = _finish(procs)
        stats = sim.sim.stats()
    assert codes == [0, 0, 0]
    assert stats["tasks_created"] == 600
    assert stats["duplicate_payloads"] == 0
    assert 0 < stats["max_in_flight_seen"] <= 6
    assert stats["max_creates_in_any_second"] <= 40
    for i in range(3):  # results, status and report from any machine show the whole run
        results = read_results(tmp_path / f"m{i}" / "spring")
        assert len(results) == 600
        assert {r["status"] for r in results} == {"succeeded"}
        status = invoke(["status", str(tmp_path / f"m{i}" / "spring")])
        assert status.exit_code == 0, status.output
        assert "600" in status.output


def test_a_runner_killed_again_and_again_loses_nothing(tmp_path: Path, pg_url: str) -> None:
    """One of three runners is SIGKILLed at random instants and restarted, four times: no row
    is sent twice except those reported unknown and resubmitted on request; all succeed."""
    sheet = write_sheet(tmp_path, 120)
    rng = random.Random(7)
    # Half the creates are answered late, so a kill often lands with a create on the wire.
    config = SimConfig(processing_seconds=0.3, slow_rate=0.5, slow_seconds=0.4)
    with serve_in_thread(config) as sim:
        limits = ("--concurrency", "6", "--rate", "30")
        steady = [
            _spawn(sheet, tmp_path / f"m{i}" / "spring", pg_url, sim.base_url, *limits)
            for i in range(2)
        ]
        victim_out = tmp_path / "victim" / "spring"
        for _ in range(4):
            victim = _spawn(sheet, victim_out, pg_url, sim.base_url, *limits)
            time.sleep(rng.uniform(0.5, 2.0))
            victim.send_signal(signal.SIGKILL)
            victim.communicate()
        _finish(steady)
        # The dead runner's tasks were taken over; what it left mid-send is unknown.
        results = {r["status"] for r in read_results(tmp_path / "m0" / "spring")}
        unknown = sum(r["status"] == "unknown" for r in read_results(tmp_path / "m0" / "spring"))
        resend = _spawn(sheet, victim_out, pg_url, sim.base_url, *limits, "--resubmit-unknown")
        _finish([resend])
        stats = sim.sim.stats()
    assert results <= {"succeeded", "unknown"}
    assert stats["duplicate_payloads"] <= unknown
    final = read_results(victim_out)
    assert {r["status"] for r in final} == {"succeeded"}
    assert stats["max_in_flight_seen"] <= 6 + unknown  # an unknown task may still be running


def test_one_budget_across_runners(tmp_path: Path, pg_url: str) -> None:
    """A ceiling of 25 row costs lets exactly 25 creates through across three runners."""
    sheet = write_sheet(tmp_path, 60)  # $0.25 a row
    with serve_in_thread(SimConfig()) as sim:
        options = ("--concurrency", "6", "--rate", "50", "--max-cost", "6.25")
        procs = [
            _spawn(sheet, tmp_path / f"m{i}" / "spring", pg_url, sim.base_url, *options)
            for i in range(3)
        ]
        codes = _finish(procs)
        stats = sim.sim.stats()
    assert stats["creates_received"] == 25
    assert stats["duplicate_payloads"] == 0
    assert 4 in codes  # --max-cost reached: stopped early
    # A runner that stopped at the ceiling wrote its results.csv then, while another runner
    # could still be following a task: the shared record, read now, holds the whole run.
    status = invoke(["status", str(tmp_path / "m0" / "spring"), "--json"])
    counts = json.loads(status.stdout)["counts"]
    assert (counts["succeeded"], counts["pending"]) == (25, 35)


def test_a_password_in_store_is_refused_before_anything_is_read(tmp_path: Path) -> None:
    """--store with a password: exit 2, the fix named, nothing sent, the password not echoed."""
    sheet = write_sheet(tmp_path, 2)
    url = "postgresql://me:hunter2@db.example.com/runs"
    result = invoke(["run", str(sheet), "--store", url, "--simulate", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "PGPASSWORD, ~/.pgpass or a service file" in result.output
    assert "hunter2" not in result.output
    assert not (tmp_path / "r").exists()


def test_the_store_comes_from_the_environment_or_the_job_file(tmp_path: Path, pg_url: str) -> None:
    """BATCHWAN_STORE and a job file's `store:` both put the record in PostgreSQL."""
    from click.testing import CliRunner

    from batchwan.cli import main
    from batchwan.store import pgread

    sheet = write_sheet(tmp_path, 3)
    job = tmp_path / "job.yaml"
    job.write_text(f"sheet: sheet.csv\nstore: {pg_url}\nout: job-run\n", encoding="utf-8")
    with serve_in_thread(SimConfig()) as sim:
        fast = ["--base-url", sim.base_url, "--poll-interval", "0.05", "--quiet"]
        env = {"MULEROUTER_API_KEY": KEY, "BATCHWAN_STORE": pg_url, "BATCHWAN_BASE_URL": ""}
        by_env = CliRunner().invoke(
            main, ["run", str(sheet), "--out", str(tmp_path / "env-run"), *fast], env=env
        )
        by_job = invoke(["run", str(job), *fast])
    assert by_env.exit_code == 0, by_env.output
    assert by_job.exit_code == 0, by_job.output
    assert not (tmp_path / "env-run" / "state.db").exists()
    assert not (tmp_path / "job-run" / "state.db").exists()
    assert len(pgread.read_records(pg_url, "env-run")) == 3
    assert len(pgread.read_records(pg_url, "job-run")) == 3


def test_runners_of_a_shared_run_may_share_one_run_folder(tmp_path: Path, pg_url: str) -> None:
    """Two runners with the same --out (a shared folder): both run, each row once, one set of
    videos."""
    sheet = write_sheet(tmp_path, 40)
    out = tmp_path / "shared" / "spring"
    with serve_in_thread(SimConfig(processing_seconds=0.2)) as sim:
        limits = ("--concurrency", "4", "--rate", "40")
        procs = [_spawn(sheet, out, pg_url, sim.base_url, *limits) for _ in range(2)]
        codes = _finish(procs)
        stats = sim.sim.stats()
    assert codes == [0, 0]
    assert stats["tasks_created"] == 40
    assert stats["duplicate_payloads"] == 0
    assert len(list((out / "videos").glob("*.mp4"))) == 40
    assert {r["status"] for r in read_results(out)} == {"succeeded"}
