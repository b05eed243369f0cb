"""One contract, two stores: SQLite (state.db) and PostgreSQL (shared) keep the same promises."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from batchwan.errors import InputError, StateError
from batchwan.store.base import Claim, Store
from batchwan.store.choose import open_store
from batchwan.values import CheckedRow, Status
from tests.storehelpers import MODEL, ROW_COST, checked_rows

Opener = Callable[[Path], Store]


@pytest.fixture(params=["sqlite", "postgresql"])
def opener(request: pytest.FixtureRequest) -> Opener:
    """Opens a store on a run folder: its state.db, or a fresh PostgreSQL database."""
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    return lambda run_dir: open_store(run_dir, url)


def _ready(opener: Opener, run_dir: Path, rows: list[CheckedRow]) -> Store:
    store = opener(run_dir)
    store.claim(run_dir.parent / "sheet.csv", MODEL, keys=[r.key for r in rows])
    store.recover(resubmit_unknown=False, retry_failed=False)
    store.sync_sheet(rows, [ROW_COST] * len(rows), [])
    return store


async def test_a_row_is_claimed_for_sending_once(opener: Opener, tmp_path: Path) -> None:
    """The first claim marks the row sending; a second one finds it taken."""
    rows = checked_rows(tmp_path, 2)
    store = _ready(opener, tmp_path / "run", rows)
    try:
        assert await store.begin_create(rows[0].key) is Claim.SENDING
        assert store.entry(rows[0].key).sending
        assert store.entry(rows[0].key).attempts == 1
        assert await store.begin_create(rows[0].key) is Claim.TAKEN
    finally:
        store.close()


async def test_the_task_id_is_kept_and_followed(opener: Opener, tmp_path: Path) -> None:
    """An accepted row is running with its task id, followed, and never claimable again."""
    rows = checked_rows(tmp_path, 2)
    store = _ready(opener, tmp_path / "run", rows)
    try:
        await store.begin_create(rows[0].key)
        await store.create_accepted(rows[0].key, "task-1")
        entry = store.entry(rows[0].key)
        assert (entry.status, entry.task_id, entry.sending) == (Status.RUNNING, "task-1", False)
        assert [e.key for e in store.tasks_to_follow()] == [rows[0].key]
        assert await store.begin_create(rows[0].key) is Claim.TAKEN
        await store.task_finished(rows[0].key, Status.SUCCEEDED, video_url="https://x/v.mp4")
        await store.note(rows[0].key, None, video_file="videos/1.mp4")
        record = store.records()[0]
        assert (record.status, record.video_file) == (Status.SUCCEEDED, "videos/1.mp4")
    finally:
        store.close()


async def test_status_and_what_to_follow_without_downloads(opener: Opener, tmp_path: Path) -> None:
    """``status`` is the newest one; without downloads a succeeded row is not followed, a
    running one still is."""
    rows = checked_rows(tmp_path, 3)
    store = _ready(opener, tmp_path / "run", rows)
    try:
        for row, task in zip(rows[:2], ("task-1", "task-2"), strict=True):
            await store.begin_create(row.key)
            assert store.status(row.key) is Status.PENDING
            await store.create_accepted(row.key, task)
        await store.task_finished(rows[0].key, Status.SUCCEEDED, video_url="https://x/v.mp4")
        assert [store.status(r.key) for r in rows] == [
            Status.SUCCEEDED, Status.RUNNING, Status.PENDING,
        ]  # fmt: skip
        assert {e.key for e in store.tasks_to_follow()} == {rows[0].key, rows[1].key}
        assert [e.key for e in store.tasks_to_follow(downloads=False)] == [rows[1].key]
    finally:
        store.close()


async def test_the_budget_lets_exactly_what_fits(opener: Opener, tmp_path: Path) -> None:
    """A ceiling of three row costs: three claims, then the budget; claims racing together too."""
    rows = checked_rows(tmp_path, 8)
    store = _ready(opener, tmp_path / "run", rows)
    try:
        claims = await asyncio.gather(
            *(store.begin_create(r.key, max_cost=3 * ROW_COST) for r in rows)
        )
        assert claims.count(Claim.SENDING) == 3
        assert claims.count(Claim.BUDGET) == 5
        assert store.committed_cost() == pytest.approx(3 * ROW_COST)
    finally:
        store.close()


async def test_a_failed_task_frees_its_cost_and_an_unknown_one_never_does(
    opener: Opener, tmp_path: Path
) -> None:
    """Failed tasks are not billed; an unknown row sent again keeps its first cost counted."""
    rows = checked_rows(tmp_path, 2)
    run_dir = tmp_path / "run"
    store = _ready(opener, run_dir, rows)
    try:
        await store.begin_create(rows[0].key)
        await store.create_accepted(rows[0].key, "t1")
        await store.task_finished(rows[0].key, Status.FAILED, error="no")
        await store.begin_create(rows[1].key)
        await store.create_settled(rows[1].key, Status.UNKNOWN, "lost")
        assert store.committed_cost() == pytest.approx(ROW_COST)
    finally:
        store.close()
    store = opener(run_dir)
    try:
        store.recover(resubmit_unknown=True, retry_failed=True)
        assert store.entry(rows[1].key).status is Status.PENDING
        assert store.committed_cost() == pytest.approx(ROW_COST)
        assert await store.begin_create(rows[1].key, max_cost=1.5 * ROW_COST) is Claim.BUDGET
        assert await store.begin_create(rows[0].key, max_cost=2 * ROW_COST) is Claim.SENDING
    finally:
        store.close()


async def test_a_row_left_mid_send_becomes_unknown(opener: Opener, tmp_path: Path) -> None:
    """A runner that stops with a create on the wire leaves the row unknown, not pending."""
    rows = checked_rows(tmp_path, 2)
    run_dir = tmp_path / "run"
    store = _ready(opener, run_dir, rows)
    try:
        await store.begin_create(rows[0].key)
    finally:
        store.close()
    store = _ready(opener, run_dir, rows)
    try:
        assert store.entry(rows[0].key).status is Status.UNKNOWN
        assert await store.begin_create(rows[0].key) is Claim.TAKEN
        assert [r.status for r in store.records()] == [Status.UNKNOWN, Status.PENDING]
    finally:
        store.close()


async def test_pending_rows_get_one_reason(opener: Opener, tmp_path: Path) -> None:
    """settle_pending notes a reason on pending rows only."""
    rows = checked_rows(tmp_path, 3)
    store = _ready(opener, tmp_path / "run", rows)
    try:
        await store.begin_create(rows[0].key)
        await store.settle_pending([r.key for r in rows], "not sent: budget")
        errors = [r.error for r in store.records()]
        assert errors[1:] == ["not sent: budget", "not sent: budget"]
        assert errors[0] != "not sent: budget"
    finally:
        store.close()


def test_another_sheet_is_refused(opener: Opener, tmp_path: Path) -> None:
    """A sheet sharing no rows with the record is refused before anything is sent."""
    rows = checked_rows(tmp_path, 3)
    run_dir = tmp_path / "run"
    _ready(opener, run_dir, rows).close()
    other = checked_rows(tmp_path / "other", 3, start=40)
    store = opener(run_dir)
    try:
        with pytest.raises(StateError, match="another sheet"):
            store.claim(tmp_path / "other" / "sheet.csv", MODEL, keys=[r.key for r in other])
    finally:
        store.close()


def test_run_lines_are_numbered(opener: Opener, tmp_path: Path) -> None:
    """Each invocation gets the next number, and its counts when it ends."""
    rows = checked_rows(tmp_path, 1)
    store = _ready(opener, tmp_path / "run", rows)
    try:
        first = store.begin_run({"concurrency": 2})
        store.end_run(first, sent=1, collected=1)
        assert store.begin_run({}) == first + 1
    finally:
        store.close()


def test_a_password_in_the_store_url_is_refused(tmp_path: Path) -> None:
    """A password on the command line is readable by every user: refused, with the fix."""
    with pytest.raises(InputError, match=r"PGPASSWORD, ~/\.pgpass"):
        open_store(tmp_path, "postgresql://me:secret@db.example.com/runs")
    with pytest.raises(InputError, match="not a store batchwan knows"):
        open_store(tmp_path, "mysql://db.example.com/runs")
