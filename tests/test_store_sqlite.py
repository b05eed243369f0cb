"""The SQLite store on its own: the committed view, the writer thread, counts, and writes."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from batchwan.errors import RunLocked, StateError
from batchwan.store.base import Claim
from batchwan.store.records import (
    BEING_SENT,
    count_statuses,
    read_committed_cost,
    read_records,
)
from batchwan.store.runlock import LOCK_FILE, RunLock, run_is_live
from batchwan.store.schema import TaskEntry
from batchwan.store.sqlite import SqliteStore, _upsert
from batchwan.values import CheckedRow, Status
from tests.storehelpers import checked_rows, open_sqlite


def test_a_live_runs_mid_send_row_reads_as_running_and_a_dead_ones_as_unknown(
    tmp_path: Path,
) -> None:
    """status while the run is alive shows a create on the wire as running, not unknown."""
    run_dir = tmp_path / "run"
    with RunLock(run_dir):
        store = open_sqlite(run_dir, checked_rows(tmp_path, 3))
        try:
            assert asyncio.run(store.begin_create(store.sheet_rows[0].key)) is Claim.SENDING
            live = read_records(run_dir)
            assert run_is_live(run_dir)
            assert [r.status for r in live] == [Status.RUNNING, Status.PENDING, Status.PENDING]
            assert live[0].error == BEING_SENT
            assert count_statuses(run_dir) == {Status.RUNNING: 1, Status.PENDING: 2}
        finally:
            store.close()
    assert not run_is_live(run_dir)
    dead = read_records(run_dir)
    assert dead[0].status is Status.UNKNOWN
    assert count_statuses(run_dir) == {Status.UNKNOWN: 1, Status.PENDING: 2}


def test_status_counts_by_sql_match_the_records(tmp_path: Path) -> None:
    """count_statuses (GROUP BY) agrees with the records it does not build."""
    rows = checked_rows(tmp_path, 6)
    store = open_sqlite(tmp_path / "run", rows)

    async def play() -> None:
        for i, row in enumerate(rows[:4]):
            await store.begin_create(row.key)
            await store.create_accepted(row.key, f"t{i}")
        await store.task_finished(rows[0].key, Status.SUCCEEDED, video_url="https://x/a.mp4")
        await store.task_finished(rows[1].key, Status.FAILED, error="no")

    try:
        asyncio.run(play())
    finally:
        store.close()
    expected = Counter(r.status for r in read_records(tmp_path / "run"))
    assert count_statuses(tmp_path / "run") == dict(expected)
    assert read_records(tmp_path / "run", {Status.FAILED})[0].error == "no"


def test_a_non_sqlite_error_in_the_writer_fails_the_write_instead_of_hanging(
    tmp_path: Path,
) -> None:
    """A lone surrogate raises UnicodeEncodeError inside the writer: the caller gets StateError,
    and the writer keeps serving the next write."""
    store = open_sqlite(tmp_path / "run", checked_rows(tmp_path, 2))
    key = store.sheet_rows[0].key

    async def play() -> None:
        with pytest.raises(StateError, match="could not write"):
            await asyncio.wait_for(store.note(key, "bad \udc80 text"), 10)
        await asyncio.wait_for(store.note(key, "fine"), 10)

    try:
        asyncio.run(play())
        assert store.entry(key).error == "fine"
    finally:
        store.close()


def test_the_committed_view_changes_only_after_the_commit(tmp_path: Path) -> None:
    """While state.db is locked by someone else, the snapshot still shows the row as not sent;
    once the commit lands, it shows the sending mark."""
    run_dir = tmp_path / "run"
    store = open_sqlite(run_dir, checked_rows(tmp_path, 2))
    key = store.sheet_rows[0].key
    blocker = sqlite3.connect(run_dir / "state.db", timeout=10, isolation_level=None)

    async def play() -> None:
        blocker.execute("BEGIN IMMEDIATE")  # the writer must wait for this
        marking = asyncio.create_task(store.begin_create(key))
        await asyncio.sleep(0.3)
        assert not marking.done()
        assert store.snapshot().entries[key].sending is False
        assert store.committed_cost() == pytest.approx(0.25)  # counted already: no slipping in
        blocker.execute("COMMIT")
        assert await marking is Claim.SENDING
        assert store.snapshot().entries[key].sending is True

    try:
        asyncio.run(play())
    finally:
        blocker.close()
        store.close()


def test_an_entry_handed_out_is_a_copy(tmp_path: Path) -> None:
    """Changing what entry() returned changes nothing in the store."""
    store = open_sqlite(tmp_path / "run", checked_rows(tmp_path, 1))
    try:
        key = store.sheet_rows[0].key
        outside = store.entry(key)
        outside.status = Status.FAILED
        assert store.entry(key).status is Status.PENDING
        assert not hasattr(store, "entries")
    finally:
        store.close()


def test_records_are_built_once_until_something_changes(tmp_path: Path) -> None:
    """results, summary, report and the exit code share one list per state of the record."""
    store = open_sqlite(tmp_path / "run", checked_rows(tmp_path, 3))
    try:
        first = store.records()
        assert store.records() is first
        asyncio.run(store.note(store.sheet_rows[0].key, "remark"))
        assert store.records() is not first
        assert store.records()[0].error == "remark"
    finally:
        store.close()


def test_deleting_dot_lock_lets_no_second_runner_in(tmp_path: Path) -> None:
    """The lock is on the folder: removing .lock (a stale-looking pid file) changes nothing."""
    run_dir = tmp_path / "run"
    with RunLock(run_dir):
        (run_dir / LOCK_FILE).unlink()
        with pytest.raises(RunLocked, match="another batchwan run"), RunLock(run_dir):
            pass
    with RunLock(run_dir):  # released: the next run gets in
        pass


def test_shared_store_runners_share_a_folder_but_never_with_a_state_db_run(
    tmp_path: Path,
) -> None:
    """Shared locks (runners of a shared run) coexist; an exclusive one is refused beside them."""
    run_dir = tmp_path / "run"
    with (
        RunLock(run_dir, shared=True),
        RunLock(run_dir, shared=True),
        pytest.raises(RunLocked),
        RunLock(run_dir),
    ):
        pass
    with RunLock(run_dir), pytest.raises(RunLocked), RunLock(run_dir, shared=True):
        pass


@pytest.mark.parametrize("how", ["delete", "replace"])
def test_a_record_removed_under_the_store_stops_its_writes(tmp_path: Path, how: str) -> None:
    """state.db deleted (with -wal and -shm) or replaced: the next write fails with a clear
    message instead of going into a file nobody will read."""
    run_dir = tmp_path / "run"
    store = open_sqlite(run_dir, checked_rows(tmp_path, 2))
    key = store.sheet_rows[0].key
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            (run_dir / f"state.db{suffix}").unlink()
    if how == "replace":
        (run_dir / "state.db").write_bytes(b"")
    try:
        with pytest.raises(StateError, match=r"state\.db was (deleted|replaced)"):
            asyncio.run(store.begin_create(key))
    finally:
        store.close()


def test_the_wal_is_folded_into_state_db_after_each_task_id(tmp_path: Path) -> None:
    """Read without its -wal, state.db alone still holds every sending mark and task id."""
    run_dir = tmp_path / "run"
    rows = checked_rows(tmp_path, 3)
    store = open_sqlite(run_dir, rows)

    async def play() -> None:
        await store.begin_create(rows[0].key)
        await store.create_accepted(rows[0].key, "task-1")
        await store.begin_create(rows[1].key)

    try:
        asyncio.run(play())
        copy = tmp_path / "copy"
        copy.mkdir()
        (copy / "state.db").write_bytes((run_dir / "state.db").read_bytes())  # no -wal
        records = read_records(copy)
    finally:
        store.close()
    assert records[0].task_id == "task-1"
    assert records[1].status is Status.UNKNOWN  # the mark is there: never silently resent
    assert records[2].status is Status.PENDING


def test_a_rerun_adding_rows_writes_only_the_new_rows(tmp_path: Path) -> None:
    """sync_sheet on a 2,000-row record with 20 rows added changes about 40 rows, not 4,000."""
    run_dir = tmp_path / "run"
    first = checked_rows(tmp_path, 2000)
    open_sqlite(run_dir, first).close()
    grown = checked_rows(tmp_path, 20, start=2001)
    store = SqliteStore(run_dir)
    try:
        store.claim(tmp_path / "sheet.csv", "wan2.5-i2v-preview")
        before = store.writes
        store.sync_sheet(grown, [0.25] * 2020, [])
        assert store.writes - before <= 2 * 20
        assert len(store.records()) == 2020
    finally:
        store.close()


def _sheet_rows(run_dir: Path) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(run_dir / "state.db")) as conn:
        return conn.execute(
            "SELECT position, key, cost FROM sheet_rows ORDER BY position"
        ).fetchall()


def test_a_sheet_shorter_or_changed_in_the_middle_is_recorded_as_read(tmp_path: Path) -> None:
    """Rows cut from the end of the sheet leave the record; a row changed in the middle is
    written again, the rows around it are not."""
    run_dir = tmp_path / "run"
    rows = checked_rows(tmp_path, 30)
    open_sqlite(run_dir, rows).close()
    store = SqliteStore(run_dir)
    try:
        store.claim(tmp_path / "sheet.csv", "wan2.5-i2v-preview")
        before = store.writes
        costs = [0.25] * 20
        costs[9] = 0.75  # the record held 0.25 for every row
        store.sync_sheet(rows[:20], costs, [])
        assert store.writes - before <= 2 + 10  # row 10 and its entry, the 10 rows cut off
        recorded = _sheet_rows(run_dir)
        assert [r[0] for r in recorded] == list(range(1, 21))
        assert [r[2] for r in recorded] == costs
        assert [r[1] for r in recorded] == [row.key for row in rows[:20]]
    finally:
        store.close()


def test_unknown_rows_sent_again_keep_their_first_cost_counted(tmp_path: Path) -> None:
    """An unknown row reopened with --resubmit-unknown still counts its first attempt."""
    run_dir = tmp_path / "run"
    rows = checked_rows(tmp_path, 2)
    store = open_sqlite(run_dir, rows)

    async def play() -> None:
        await store.begin_create(rows[0].key)
        await store.create_settled(rows[0].key, Status.UNKNOWN, "lost")

    try:
        asyncio.run(play())
    finally:
        store.close()
    store = SqliteStore(run_dir)
    try:
        store.recover(resubmit_unknown=True, retry_failed=False)
        assert store.entry(rows[0].key).status is Status.PENDING
        assert store.committed_cost() == pytest.approx(0.25)
        assert asyncio.run(store.begin_create(rows[0].key, max_cost=0.4)) is Claim.BUDGET
    finally:
        store.close()
    assert read_committed_cost(run_dir) == pytest.approx(0.25)


def _keys(rows: list[CheckedRow]) -> list[str]:
    return [row.key for row in rows]


def test_another_sheet_is_refused_and_a_moved_one_is_recognised(tmp_path: Path) -> None:
    """The record knows its sheet by its rows: same rows under a new path go on, other rows
    are refused."""
    run_dir = tmp_path / "run"
    rows = checked_rows(tmp_path, 4)
    open_sqlite(run_dir, rows).close()
    store = SqliteStore(run_dir)
    try:
        store.claim(tmp_path / "renamed.csv", "wan2.5-i2v-preview", keys=_keys(rows))
        assert store.meta["sheet"].endswith("renamed.csv")
        other = checked_rows(tmp_path / "elsewhere", 4, start=100)
        with pytest.raises(StateError, match="it is another sheet"):
            store.claim(tmp_path / "other.csv", "wan2.5-i2v-preview", keys=_keys(other))
    finally:
        store.close()


def test_a_reopened_store_reads_back_every_field_of_its_entries(tmp_path: Path) -> None:
    """Entries read by position on opening are the entries written, field for field."""
    run_dir = tmp_path / "run"
    store = open_sqlite(run_dir, checked_rows(tmp_path, 2))
    key = store.sheet_rows[0].key
    written = TaskEntry(
        key, "c" * 64, Status.UNKNOWN, "some-model", 1.25, "720P", 10, task_id="task-1",
        video_url="https://x/v.mp4", video_file="videos/v.mp4", error="lost", attempts=3,
        sending=True, submitted_at=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        finished_at=datetime(2024, 6, 7, 8, 9, 10, tzinfo=UTC), prior_cost=0.5,
    )  # fmt: skip
    try:
        store.writer.write_now([_upsert(written)])
    finally:
        store.close()
    again = SqliteStore(run_dir)
    try:
        assert again.entry(key) == written
        assert again.entry(store.sheet_rows[1].key).status is Status.PENDING
    finally:
        again.close()
