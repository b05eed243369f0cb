"""Whole runs against the simulator over loopback: results, reruns, faults, limits, exit codes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from batchwan.sim.simulator import SimConfig, serve_in_thread
from batchwan.store.runlock import RunLock
from tests.runhelpers import KEY, fast_options, invoke, read_results, write_sheet


def test_clean_run_succeeds_once_per_row_and_rerun_sends_nothing(tmp_path: Path) -> None:
    """300 rows all succeed, in sheet order, one create each; a rerun sends no create."""
    sheet = write_sheet(tmp_path, 300)
    out = tmp_path / "run"
    with serve_in_thread(SimConfig(seed=1, api_key=KEY)) as sim:
        first = invoke(["run", str(sheet), *fast_options(sim.base_url, out)])
        assert first.exit_code == 0, first.output
        stats = sim.sim.stats()
        assert stats["creates_received"] == 300
        assert stats["tasks_created"] == 300
        assert stats["duplicate_payloads"] == 0
        second = invoke(["run", str(sheet), *fast_options(sim.base_url, out)])
        assert second.exit_code == 0, second.output
        assert sim.sim.stats()["creates_received"] == 300
    rows = read_results(out)
    assert [r["row"] for r in rows] == [str(i) for i in range(1, 301)]
    assert {r["status"] for r in rows} == {"succeeded"}
    assert all((out / r["video_file"]).read_bytes()[4:8] == b"ftyp" for r in rows)
    assert [r["campaign"] for r in rows[:3]] == ["c1", "c2", "c0"]
    assert list(rows[0]) == [
        "row", "id", "status", "task_id", "video_url", "video_file", "error", "attempts",
        "submitted_at", "finished_at", "model", "prompt", "image", "resolution", "duration",
        "seed", "cost", "line", "campaign",
    ]  # fmt: skip


def test_rows_added_to_the_sheet_are_sent_on_the_next_run(tmp_path: Path) -> None:
    """Cron on a growing sheet: the second run sends only the new rows."""
    sheet = write_sheet(tmp_path, 20)
    out = tmp_path / "run"
    with serve_in_thread(SimConfig(seed=2)) as sim:
        assert invoke(["run", str(sheet), *fast_options(sim.base_url, out)]).exit_code == 0
        write_sheet(tmp_path, 5, start=21)
        assert invoke(["run", str(sheet), *fast_options(sim.base_url, out)]).exit_code == 0
        assert sim.sim.stats()["creates_received"] == 25
    assert len(read_results(out)) == 25


def test_every_fault_at_once_ends_cleanly_and_statuses_match_the_simulator(
    tmp_path: Path,
) -> None:
    """All faults on: no traceback, no duplicate payload, each row's status is what happened."""
    sheet = write_sheet(tmp_path, 120)
    out = tmp_path / "run"
    config = SimConfig(
        seed=7, api_key=KEY, fail_rate=0.1, no_video_rate=0.05, rate_429=0.05,
        rate_429_bare=0.05, retry_after_seconds=0.05, rate_500=0.03, rate_502=0.03,
        rate_503=0.05, rate_504=0.03, drop_before_rate=0.03, drop_after_rate=0.03,
        slow_rate=0.05, slow_seconds=0.2, not_found_polls=2, poll_fault_rate=0.1,
        max_in_flight=12, max_creates_per_second=50, processing_seconds=0.1,
    )  # fmt: skip
    with serve_in_thread(config) as sim:
        result = invoke(["run", str(sheet), *fast_options(sim.base_url, out)])
        stats = sim.sim.stats()
        tasks = {t["prompt"]: t for t in sim.sim.tasks()}
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert stats["duplicate_payloads"] == 0
    expected = {"completed": "succeeded", "failed": "failed", "no_video": "failed"}
    statuses = Counter()
    prompts = [f"prompt number {i}: a cat walks along a wall" for i in range(1, 121)]
    for prompt, row in zip(prompts, read_results(out), strict=True):
        statuses[row["status"]] += 1
        task = tasks.get(prompt)
        if task is None or task["fate"] in ("dropped_after", "error_after_create"):
            assert row["status"] == "unknown", (prompt, task, row)
        else:
            assert row["status"] == expected[task["fate"]], (prompt, task, row)
            assert row["task_id"] == task["id"]
    assert statuses["succeeded"] > 60
    assert statuses["unknown"] > 0
    assert statuses["failed"] > 0


def test_limits_hold_at_the_simulator(tmp_path: Path) -> None:
    """Tasks in flight never exceed --concurrency and creates per second never exceed --rate."""
    sheet = write_sheet(tmp_path, 40)
    out = tmp_path / "run"
    config = SimConfig(seed=3, processing_seconds=0.3, max_in_flight=3, max_creates_per_second=5)
    with serve_in_thread(config) as sim:
        args = [*fast_options(sim.base_url, out), "--concurrency", "3", "--rate", "5"]
        result = invoke(["run", str(sheet), *args])
        stats = sim.sim.stats()
    assert result.exit_code == 0, result.output
    assert stats["max_in_flight_seen"] <= 3
    assert stats["max_creates_in_any_second"] <= 5
    assert sum(stats["faults"].values()) == 0  # the simulator never had to answer 429
    assert stats["tasks_created"] == 40


def test_a_429_pauses_and_the_row_is_sent_again(tmp_path: Path) -> None:
    """Rows refused with 429 (with and without Retry-After) are retried and succeed."""
    sheet = write_sheet(tmp_path, 30)
    out = tmp_path / "run"
    # Refusals stay rare enough that no row plausibly exhausts its 8 tries (0.25^8 per row).
    config = SimConfig(seed=5, rate_429=0.15, rate_429_bare=0.05, retry_after_seconds=0.1,
                       rate_503=0.05)  # fmt: skip
    with serve_in_thread(config) as sim:
        result = invoke(["run", str(sheet), *fast_options(sim.base_url, out)])
        stats = sim.sim.stats()
    assert result.exit_code == 0, result.output
    assert stats["tasks_created"] == 30
    assert stats["duplicate_payloads"] == 0
    rows = read_results(out)
    assert sum(int(r["attempts"]) for r in rows) == stats["creates_received"]
    assert any(int(r["attempts"]) > 1 for r in rows)


def test_exit_1_when_some_rows_are_invalid(tmp_path: Path) -> None:
    """Invalid rows are reported and not sent; the valid ones run; exit code 1."""
    sheet = write_sheet(tmp_path, 3)
    with sheet.open("a", encoding="utf-8") as handle:
        handle.write("a dog,https://images.example.com/d.jpg,7,480P,c9\n")
    out = tmp_path / "run"
    with serve_in_thread(SimConfig()) as sim:
        result = invoke(["run", str(sheet), *fast_options(sim.base_url, out)])
        assert sim.sim.stats()["creates_received"] == 3
    assert result.exit_code == 1
    assert "row 4: duration:" in result.output
    assert [r["status"] for r in read_results(out)] == ["succeeded"] * 3 + ["invalid"]


def test_exit_2_without_a_key(tmp_path: Path) -> None:
    """No key in the environment: the run does not start, and says how to fix it."""
    sheet = write_sheet(tmp_path, 1)
    result = invoke(["run", str(sheet), "--out", str(tmp_path / "run")], key=None)
    assert result.exit_code == 2
    assert "MULEROUTER_API_KEY is not set" in result.output
    assert not (tmp_path / "run").exists()


def test_exit_2_for_an_unreadable_sheet(tmp_path: Path) -> None:
    """A sheet that does not exist is one clear message and exit code 2."""
    result = invoke(["run", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "nope.csv" in result.output


def test_exit_3_when_another_run_holds_the_folder(tmp_path: Path) -> None:
    """A second run on a locked run folder exits 3 and sends nothing."""
    sheet = write_sheet(tmp_path, 2)
    out = tmp_path / "run"
    with serve_in_thread(SimConfig()) as sim, RunLock(out):
        result = invoke(["run", str(sheet), *fast_options(sim.base_url, out)])
        assert sim.sim.stats()["creates_received"] == 0
    assert result.exit_code == 3
    assert "another batchwan run" in result.output


def test_exit_4_when_the_key_is_refused(tmp_path: Path) -> None:
    """A 401 stops the run at once; the untouched rows stay pending; exit code 4."""
    sheet = write_sheet(tmp_path, 10)
    out = tmp_path / "run"
    with serve_in_thread(SimConfig(api_key="another-key")) as sim:
        result = invoke(["run", str(sheet), *fast_options(sim.base_url, out, "--concurrency", "1")])
        assert sim.sim.stats()["tasks_created"] == 0
    assert result.exit_code == 4, result.output
    assert KEY not in result.output
    assert KEY not in (out / "run.log").read_text()
    assert {r["status"] for r in read_results(out)} == {"pending"}


@pytest.mark.parametrize("ceiling_rows", [0, 3])
def test_max_cost_lets_exactly_n_creates_through_across_two_runs(
    tmp_path: Path, ceiling_rows: int
) -> None:
    """A ceiling of N row costs lets exactly N creates through, also counted across reruns."""
    sheet = write_sheet(tmp_path, 4, resolution="720P", duration=5)  # $0.50 a row
    out = tmp_path / "run"
    with serve_in_thread(SimConfig()) as sim:
        first = invoke(["run", str(sheet), *fast_options(sim.base_url, out),
                        "--max-cost", str(0.5 * ceiling_rows)])  # fmt: skip
        assert sim.sim.stats()["tasks_created"] == ceiling_rows
        write_sheet(tmp_path, 4, start=5, resolution="720P")
        second = invoke(["run", str(sheet), *fast_options(sim.base_url, out),
                         "--max-cost", str(0.5 * (ceiling_rows + 2))])  # fmt: skip
        assert sim.sim.stats()["tasks_created"] == ceiling_rows + 2
    assert first.exit_code == 4
    assert second.exit_code == 4
    rows = read_results(out)
    assert Counter(r["status"] for r in rows) == {"succeeded": ceiling_rows + 2,
                                                  "pending": 6 - ceiling_rows}  # fmt: skip
    assert all("--max-cost" in r["error"] for r in rows if r["status"] == "pending")


def test_dry_run_sends_nothing(tmp_path: Path) -> None:
    """--dry-run prints the plan and sends nothing."""
    sheet = write_sheet(tmp_path, 4, resolution="1080P", duration=10)
    with serve_in_thread(SimConfig()) as sim:
        result = invoke(["run", str(sheet), *fast_options(sim.base_url, tmp_path / "r"),
                         "--dry-run"])  # fmt: skip
        assert sim.sim.stats()["creates_received"] == 0
    assert result.exit_code == 0, result.output
    assert "6.00" in result.output  # 4 rows x 10 s x $0.15


def test_no_wait_submits_and_a_later_run_collects(tmp_path: Path) -> None:
    """--no-wait exits once every row is submitted; the next run collects without resending."""
    sheet = write_sheet(tmp_path, 5)
    out = tmp_path / "run"
    with serve_in_thread(SimConfig(hold=True)) as sim:
        first = invoke(["run", str(sheet), *fast_options(sim.base_url, out), "--no-wait"])
        assert first.exit_code == 0, first.output
        assert {r["status"] for r in read_results(out)} == {"running"}
        sim.sim.release()
        second = invoke(["run", str(sheet), *fast_options(sim.base_url, out)])
        assert second.exit_code == 0, second.output
        assert sim.sim.stats()["creates_received"] == 5
    assert {r["status"] for r in read_results(out)} == {"succeeded"}


def test_no_download_records_urls_and_a_later_run_downloads(tmp_path: Path) -> None:
    """--no-download keeps the URL; a later run without it downloads, sending no create."""
    sheet = write_sheet(tmp_path, 3)
    out = tmp_path / "run"
    with serve_in_thread(SimConfig()) as sim:
        first = invoke(["run", str(sheet), *fast_options(sim.base_url, out), "--no-download"])
        assert first.exit_code == 0, first.output
        rows = read_results(out)
        assert all(r["video_url"] and not r["video_file"] for r in rows)
        assert invoke(["run", str(sheet), *fast_options(sim.base_url, out)]).exit_code == 0
        assert sim.sim.stats()["creates_received"] == 3
    assert all((out / r["video_file"]).is_file() for r in read_results(out))


def test_retry_failed_sends_failed_rows_again(tmp_path: Path) -> None:
    """Failed rows stay failed on a plain rerun and are sent again with --retry-failed."""
    sheet = write_sheet(tmp_path, 10)
    out = tmp_path / "run"
    with serve_in_thread(SimConfig(seed=11, fail_rate=0.5)) as sim:
        assert invoke(["run", str(sheet), *fast_options(sim.base_url, out)]).exit_code == 1
        failed = sum(r["status"] == "failed" for r in read_results(out))
        assert failed > 0
        assert invoke(["run", str(sheet), *fast_options(sim.base_url, out)]).exit_code == 1
        assert sim.sim.stats()["creates_received"] == 10
        invoke(["run", str(sheet), *fast_options(sim.base_url, out), "--retry-failed"])
        assert sim.sim.stats()["creates_received"] == 10 + failed


def test_a_row_changed_under_the_same_id_is_reported_not_sent(tmp_path: Path) -> None:
    """Changing a sent row's content but keeping its id reports it and sends nothing new."""
    sheet = tmp_path / "s.csv"
    sheet.write_text("id,prompt,image\nhero,a cat,https://x.example.com/a.jpg\n")
    out = tmp_path / "run"
    with serve_in_thread(SimConfig()) as sim:
        assert invoke(["run", str(sheet), *fast_options(sim.base_url, out)]).exit_code == 0
        sheet.write_text("id,prompt,image\nhero,a dog,https://x.example.com/a.jpg\n")
        result = invoke(["run", str(sheet), *fast_options(sim.base_url, out)])
        assert sim.sim.stats()["creates_received"] == 1
    assert result.exit_code == 1  # the sheet's current content was never generated
    assert "content changed" in result.output
    assert "content changed" in read_results(out)[0]["error"]


def test_simulate_reruns_never_repeat_a_task_id(tmp_path: Path) -> None:
    """--simulate twice on one run folder (a row added between): every task id is distinct."""
    sheet = write_sheet(tmp_path, 3)
    out = tmp_path / "run"
    args = ["run", str(sheet), "--simulate", "--out", str(out), "--poll-interval", "0.05", "-q"]
    assert invoke(args, key=None).exit_code == 0
    write_sheet(tmp_path, 2, start=4)
    assert invoke(args, key=None).exit_code == 0
    task_ids = [r["task_id"] for r in read_results(out)]
    assert len(task_ids) == 5
    assert len(set(task_ids)) == 5
