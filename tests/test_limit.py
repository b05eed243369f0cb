"""--limit N: a trial run sends at most N new rows, counted at the simulator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from batchwan.sim.simulator import RunningSimulator, SimConfig, serve_in_thread
from tests.runhelpers import fast_options, invoke, read_results, write_sheet


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    """An instant simulator on loopback."""
    with serve_in_thread(SimConfig()) as running:
        yield running


def test_limit_sends_exactly_n_and_keeps_the_rest_pending(
    tmp_path: Path, sim: RunningSimulator
) -> None:
    """--limit 3 on 20 rows: 3 creates reach the provider; 17 rows pending, saying why."""
    sheet = write_sheet(tmp_path, 20)
    out = tmp_path / "r"
    result = invoke(["run", str(sheet), *fast_options(sim.base_url, out, "--limit", "3")])
    assert result.exit_code == 1  # rows still pending need attention
    assert len(sim.sim.tasks()) == 3
    rows = read_results(out)
    assert [r["status"] for r in rows] == ["succeeded"] * 3 + ["pending"] * 17
    assert {r["error"] for r in rows[3:]} == {"not sent: --limit 3 reached"}


def test_a_second_limited_run_sends_the_next_rows(tmp_path: Path, sim: RunningSimulator) -> None:
    """Each run sends N more, in sheet order; without a limit the rest go."""
    sheet = write_sheet(tmp_path, 8)
    out = tmp_path / "r"
    invoke(["run", str(sheet), *fast_options(sim.base_url, out, "--limit", "3")])
    invoke(["run", str(sheet), *fast_options(sim.base_url, out, "--limit", "3")])
    assert len(sim.sim.tasks()) == 6
    assert [r["status"] for r in read_results(out)] == ["succeeded"] * 6 + ["pending"] * 2
    result = invoke(["run", str(sheet), *fast_options(sim.base_url, out)])
    assert result.exit_code == 0
    assert len(sim.sim.tasks()) == 8
    assert {t["prompt"] for t in sim.sim.tasks()} == {
        f"prompt number {i}: a cat walks along a wall" for i in range(1, 9)
    }


def test_dry_run_says_what_the_limit_sends(tmp_path: Path) -> None:
    """The plan says how many of the new rows this run would send."""
    sheet = write_sheet(tmp_path, 20)
    result = invoke(["run", str(sheet), "--dry-run", "--limit", "3", "--out", str(tmp_path / "r")])
    assert result.exit_code == 0
    assert "--limit 3: this run sends 3 of the 20 new rows; the other 17 stay pending" in (
        result.output
    )


def test_job_file_limit(tmp_path: Path, sim: RunningSimulator) -> None:
    """`limit:` in a job file does what --limit does."""
    write_sheet(tmp_path, 5)
    job = tmp_path / "job.yaml"
    job.write_text("sheet: sheet.csv\nlimit: 2\n", encoding="utf-8")
    invoke(["run", str(job), *fast_options(sim.base_url, tmp_path / "r")])
    assert len(sim.sim.tasks()) == 2


@pytest.mark.parametrize("value", ["0", "-1", "x"])
def test_a_bad_limit_is_refused(tmp_path: Path, value: str) -> None:
    """--limit must be a whole number of at least 1."""
    sheet = write_sheet(tmp_path, 1)
    assert invoke(["run", str(sheet), "--dry-run", "--limit", value]).exit_code == 2
