"""The same generation is never paid for twice by accident across run folders."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchwan.sim.simulator import RunningSimulator, SimConfig, serve_in_thread
from batchwan.store import repeats
from tests.runhelpers import KEY, fast_options, invoke, read_results, write_sheet


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    """An instant simulator on loopback."""
    with serve_in_thread(SimConfig()) as running:
        yield running


def index_rows() -> list[tuple[object, ...]]:
    """What the index of sends holds."""
    path = Path(os.environ["XDG_STATE_HOME"]) / "batchwan" / "sent.db"
    if not path.exists():
        return []
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT run_dir, position, task_id FROM sent ORDER BY position"
        ).fetchall()


def run(sim: RunningSimulator, sheet: Path, out: Path, *extra: str):  # type: ignore[no-untyped-def]
    """`batchwan run` against the simulator, with a key (a real, not simulated, run)."""
    return invoke(["run", str(sheet), *fast_options(sim.base_url, out, *extra)])


def test_a_second_run_folder_sends_nothing_again(tmp_path: Path, sim: RunningSimulator) -> None:
    """The same sheet into two run folders: each row sent once in all; B says where A's is."""
    sheet = write_sheet(tmp_path, 3)
    first = run(sim, sheet, tmp_path / "a")
    assert first.exit_code == 0
    second = run(sim, sheet, tmp_path / "b")
    assert second.exit_code == 1
    assert len(sim.sim.tasks()) == 3
    a_rows, b_rows = read_results(tmp_path / "a"), read_results(tmp_path / "b")
    assert [r["status"] for r in b_rows] == ["duplicate"] * 3
    where = (tmp_path / "a").resolve()
    assert b_rows[0]["error"] == (
        f"already sent from run folder {where}, row 1, task {a_rows[0]['task_id']}, "
        f"video {where / a_rows[0]['video_file']}; not sent again (pass --allow-repeat to send "
        "it anyway, or give it a `take` column for a deliberate second take)"
    )


def test_the_dry_run_says_where_the_earlier_one_is(tmp_path: Path, sim: RunningSimulator) -> None:
    """The plan of run folder B names run folder A's row."""
    sheet = write_sheet(tmp_path, 2)
    run(sim, sheet, tmp_path / "a")
    result = invoke(
        ["run", str(sheet), "--dry-run", "--base-url", sim.base_url, "--out", str(tmp_path / "b")]
    )
    assert result.exit_code == 1
    assert f"row 2: already sent from run folder {(tmp_path / 'a').resolve()}, row 2" in (
        result.output
    )


def test_allow_repeat_sends_again(tmp_path: Path, sim: RunningSimulator) -> None:
    """--allow-repeat: the second folder sends every row again."""
    sheet = write_sheet(tmp_path, 3)
    run(sim, sheet, tmp_path / "a")
    assert run(sim, sheet, tmp_path / "b", "--allow-repeat").exit_code == 0
    assert len(sim.sim.tasks()) == 6


def test_a_take_column_is_a_deliberate_second_take(tmp_path: Path, sim: RunningSimulator) -> None:
    """The same request with take 2 is another request; take 1 again is a repeat."""
    url = "https://images.example.com/1.jpg"
    one = tmp_path / "one.csv"
    one.write_text(f"prompt,image,take\na cat,{url},1\n", encoding="utf-8")
    two = tmp_path / "two.csv"
    two.write_text(f"prompt,image,take\na cat,{url},2\n", encoding="utf-8")
    assert run(sim, one, tmp_path / "a").exit_code == 0
    assert run(sim, two, tmp_path / "b").exit_code == 0
    assert run(sim, one, tmp_path / "c").exit_code == 1
    assert len(sim.sim.tasks()) == 2


def test_killed_between_the_answer_and_the_index_write_still_counts(
    tmp_path: Path, sim: RunningSimulator
) -> None:
    """A run that never wrote the task id to the index (killed then) still counts as sent."""

    async def killed(self: object, *args: object) -> None:
        return None  # the second write never happens

    sheet = write_sheet(tmp_path, 2)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(repeats.RepeatIndex, "accepted", killed)
        run(sim, sheet, tmp_path / "a")
    assert [row[2] for row in index_rows()] == [None, None]
    result = run(sim, sheet, tmp_path / "b")
    assert result.exit_code == 1
    assert len(sim.sim.tasks()) == 2
    errors = [r["error"] for r in read_results(tmp_path / "b")]
    assert errors[0].startswith(
        f"already sent from run folder {(tmp_path / 'a').resolve()}, row 1 (a create "
        "was sent; its answer was not recorded there)"
    )


def test_a_rerun_of_the_same_folder_is_not_a_repeat(tmp_path: Path, sim: RunningSimulator) -> None:
    """Continuing one run folder never holds its own rows back; new rows are sent."""
    sheet = write_sheet(tmp_path, 2)
    run(sim, sheet, tmp_path / "a")
    write_sheet(tmp_path, 1, start=3)
    assert run(sim, sheet, tmp_path / "a").exit_code == 0
    assert len(sim.sim.tasks()) == 3
    assert [r["status"] for r in read_results(tmp_path / "a")] == ["succeeded"] * 3


def test_another_provider_is_another_index(tmp_path: Path, sim: RunningSimulator) -> None:
    """Rows sent to one base URL are not held back for another."""
    sheet = write_sheet(tmp_path, 2)
    run(sim, sheet, tmp_path / "a")
    with serve_in_thread(SimConfig()) as other:
        assert run(other, sheet, tmp_path / "b").exit_code == 0
        assert len(other.sim.tasks()) == 2


def test_simulated_runs_never_enter_the_index(tmp_path: Path) -> None:
    """--simulate in two folders: both send, and the index stays empty."""
    sheet = write_sheet(tmp_path, 2)
    for out in ("a", "b"):
        result = invoke(
            ["run", str(sheet), "--simulate", "--quiet", "--poll-interval", "0.05",
             "--out", str(tmp_path / out)]
        )  # fmt: skip
        assert result.exit_code == 0
    assert index_rows() == []


def test_the_index_never_holds_the_key(tmp_path: Path, sim: RunningSimulator) -> None:
    """Only a hash of the key is kept."""
    run(sim, write_sheet(tmp_path, 1), tmp_path / "a")
    folder = Path(os.environ["XDG_STATE_HOME"]) / "batchwan"
    blobs = b"".join(p.read_bytes() for p in folder.iterdir())
    assert KEY.encode() not in blobs
    assert len(index_rows()) == 1


async def test_a_create_surely_not_received_is_taken_out(tmp_path: Path) -> None:
    """about_to_send then not_sent leaves nothing; an accepted one stays, with its task id."""
    from batchwan.values import CheckedRow, Status

    index = repeats.RepeatIndex(tmp_path / "sent.db", "https://api.example.com/", KEY)
    row = CheckedRow(1, "k1", "k1", Status.PENDING, {"prompt": "p"}, None, "h" * 64)
    other = CheckedRow(2, "k2", "k2", Status.PENDING, {"prompt": "q"}, None, "g" * 64)
    try:
        await index.about_to_send(row, tmp_path / "a")
        await index.not_sent(row, tmp_path / "a")
        await index.about_to_send(other, tmp_path / "a")
        await index.accepted(other, tmp_path / "a", "task-2")
        found = index.earlier(["g" * 64], tmp_path / "b")
        assert found["g" * 64].task_id is None  # the send counts at once; its id comes later
    finally:
        index.close()
    index = repeats.RepeatIndex(tmp_path / "sent.db", "https://api.example.com/", KEY)
    try:
        found = index.earlier(["h" * 64, "g" * 64], tmp_path / "b")
        assert list(found) == ["g" * 64]
        assert found["g" * 64].task_id == "task-2"
        assert index.earlier(["g" * 64], tmp_path / "a") == {}  # its own folder: no repeat
    finally:
        index.close()


def test_another_account_is_another_index(tmp_path: Path, sim: RunningSimulator) -> None:
    """Rows sent with one key are not held back for another key on the same provider."""
    sheet = write_sheet(tmp_path, 2)
    run(sim, sheet, tmp_path / "a")
    other = invoke(
        ["run", str(sheet), *fast_options(sim.base_url, tmp_path / "b")], key="sk-other-key-42"
    )
    assert other.exit_code == 0
    assert len(sim.sim.tasks()) == 4


def test_a_refused_key_leaves_nothing_in_the_index(tmp_path: Path) -> None:
    """A 401 on the create: nothing was made, so nothing counts as sent."""
    with serve_in_thread(SimConfig(api_key="sk-the-right-key-000")) as locked:
        result = run(locked, write_sheet(tmp_path, 2), tmp_path / "a")
        assert result.exit_code == 4
        assert locked.sim.tasks() == []
    assert index_rows() == []
