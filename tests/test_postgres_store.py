"""The PostgreSQL store's own plumbing: migrations, an unreachable server, the run's name."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest

from batchwan.errors import StateError
from batchwan.store.pgschema import migrations, read_pointer
from batchwan.store.postgres import PostgresStore
from batchwan.values import CheckedRow
from tests.runhelpers import invoke, write_sheet


def test_migrations_are_applied_once_and_recorded(tmp_path: Path, pg_url: str) -> None:
    """Every shipped migration is applied in order, once, however many runners open the store."""
    shipped = migrations()
    assert [number for number, _, _ in shipped] == sorted({n for n, _, _ in shipped})
    for i in range(2):
        PostgresStore(pg_url, tmp_path / f"m{i}" / "spring").close()
    with psycopg.connect(pg_url) as conn:
        applied = conn.execute("SELECT version, name FROM bw_schema ORDER BY version").fetchall()
    assert applied == [(number, name) for number, name, _ in shipped]


def test_the_run_is_named_by_its_folder_and_the_folder_points_at_the_store(
    tmp_path: Path, pg_url: str
) -> None:
    """--out .../spring is the run `spring`; store.json says where its record is."""
    store = PostgresStore(pg_url, tmp_path / "a" / "spring")
    store.close()
    assert store.run == "spring"
    assert read_pointer(tmp_path / "a" / "spring") == {"store": pg_url, "run": "spring"}


def test_an_unreachable_store_is_one_clear_message(tmp_path: Path) -> None:
    """No server at the URL: StateError naming it; the CLI exits 2 and sends nothing."""
    url = f"postgresql://nobody@/db?host={tmp_path}&connect_timeout=2"
    with pytest.raises(StateError, match="cannot reach the shared store"):
        PostgresStore(url, tmp_path / "run")
    sheet = write_sheet(tmp_path, 1)
    result = invoke(["run", str(sheet), "--simulate", "--store", url, "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "cannot reach the shared store" in result.output


def test_a_folder_never_switches_between_its_own_record_and_a_shared_one(
    tmp_path: Path, pg_url: str
) -> None:
    """A state.db folder run with --store, or a shared-store folder run without: exit 2, with
    the fix, nothing sent."""
    from batchwan.sim.simulator import SimConfig, serve_in_thread
    from tests.runhelpers import fast_options

    sheet = write_sheet(tmp_path, 2)
    own, shared = tmp_path / "own", tmp_path / "shared"
    with serve_in_thread(SimConfig()) as sim:
        assert invoke(["run", str(sheet), *fast_options(sim.base_url, own)]).exit_code == 0
        to_shared = invoke(["run", str(sheet), *fast_options(sim.base_url, own, "--store", pg_url)])
        first = invoke(["run", str(sheet), *fast_options(sim.base_url, shared, "--store", pg_url)])
        assert first.exit_code == 0, first.output
        to_own = invoke(["run", str(sheet), *fast_options(sim.base_url, shared)])
        assert sim.sim.stats()["creates_received"] == 4
    assert to_shared.exit_code == 2
    assert "a shared store would send its rows again" in to_shared.output
    assert to_own.exit_code == 2
    assert f"run with --store {pg_url}" in to_own.output


def _expire(pg_url: str, store: PostgresStore) -> None:
    """Make ``store``'s runner look dead: its lease in the past, its heartbeat stopped."""
    store._heart.stop()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE bw_runners SET lease = now() - interval '1 minute' WHERE runner = %s",
            (store.runner,),
        )


def _runner(pg_url: str, machine: Path, rows: list[CheckedRow]) -> PostgresStore:
    """A runner of the shared run `spring` on ``machine``, its sheet of ``rows`` synced."""
    from tests.storehelpers import MODEL, ROW_COST

    store = PostgresStore(pg_url, machine / "spring")
    store.claim(machine.parent / "sheet.csv", MODEL, keys=[r.key for r in rows])
    store.recover(resubmit_unknown=False, retry_failed=False)
    store.sync_sheet(rows, [ROW_COST] * len(rows), [])
    return store


async def test_a_dead_runners_tasks_are_adopted_and_its_sends_become_unknown(
    tmp_path: Path, pg_url: str
) -> None:
    """Runner A accepts one row and is mid-send on another, then dies: runner B follows the
    accepted task and shows the other row unknown; while A lived, readers showed it running."""
    from batchwan.store.base import Claim
    from batchwan.store.records import BEING_SENT, read_records
    from batchwan.values import Status
    from tests.storehelpers import checked_rows

    rows = checked_rows(tmp_path, 3)
    keys = [r.key for r in rows]

    def ready(name: str) -> PostgresStore:
        return _runner(pg_url, tmp_path / name, rows)

    a = ready("a")
    await a.begin_create(keys[0])
    await a.create_accepted(keys[0], "task-a")
    assert await a.begin_create(keys[1]) is Claim.SENDING
    live = read_records(tmp_path / "a" / "spring")
    assert (live[1].status, live[1].error) == (Status.RUNNING, BEING_SENT)
    _expire(pg_url, a)
    b = ready("b")
    try:
        followed = b.tasks_to_follow()
        assert [(e.key, e.task_id) for e in followed] == [(keys[0], "task-a")]
        statuses = [r.status for r in read_records(tmp_path / "b" / "spring")]
        assert statuses == [Status.RUNNING, Status.UNKNOWN, Status.PENDING]
        assert await b.begin_create(keys[1]) is Claim.TAKEN  # never resent unasked
    finally:
        b.close()
        a._executor.shutdown()
        a._pool.close()


async def test_a_dead_runners_tasks_do_not_hold_the_places_of_the_live_ones(
    tmp_path: Path, pg_url: str
) -> None:
    """Runner A dies with a task running: it stays open for whoever adopts it later, but the
    in-flight limit counts only what live runners follow, so runner B (concurrency 1) can
    still send; before, crashes could fill every place and stop every runner for good."""
    from batchwan.store.base import Claim
    from batchwan.store.pglimits import open_tasks, tasks_in_flight
    from tests.storehelpers import checked_rows

    rows = checked_rows(tmp_path, 2)
    keys = [r.key for r in rows]
    a = _runner(pg_url, tmp_path / "a", rows)
    await a.begin_create(keys[0])
    await a.create_accepted(keys[0], "task-a")
    _expire(pg_url, a)
    b = PostgresStore(pg_url, tmp_path / "b" / "spring")
    try:
        b.limits(1, 10.0)  # concurrency 1 across the run
        assert (open_tasks(b), tasks_in_flight(b)) == (1, 0)
        assert await b.begin_create(keys[1]) is Claim.SENDING
        assert tasks_in_flight(b) == 1
    finally:
        b.close()
        a._executor.shutdown()
        a._pool.close()


async def test_settling_pending_rows_never_deadlocks_with_a_runner_recording_the_sheet(
    tmp_path: Path, pg_url: str
) -> None:
    """A runner marking its pending rows (its budget reached) while another transaction locks
    the same rows in key order, as recording the sheet does, waits for it instead of
    deadlocking. The rows lie in the table against key order and every scan is sequential, so
    an UPDATE that locked rows as its scan met them would take the second key first."""
    from tests.storehelpers import checked_rows

    with psycopg.connect(pg_url, autocommit=True) as conn:
        for plan in ("enable_indexscan", "enable_bitmapscan"):
            conn.execute(f'ALTER DATABASE "{conn.info.dbname}" SET {plan} = off')
    rows = checked_rows(tmp_path, 2)
    store = _runner(pg_url, tmp_path / "a", rows)
    first, second = sorted(r.key for r in rows)
    try:
        with psycopg.connect(pg_url) as other:
            # A new version of the first key's row: it now lies after the second's.
            other.execute("UPDATE bw_tasks SET error = NULL WHERE key = %s", (first,))
            other.commit()
            lock = "SELECT 1 FROM bw_tasks WHERE key = %s FOR UPDATE"
            other.execute(lock, (first,))
            settling = asyncio.ensure_future(store.settle_pending([first, second], "not sent"))
            await asyncio.sleep(0.5)  # it waits for the first key, holding no other
            other.execute(lock, (second,))  # a deadlock is told here, or to the settling runner
            other.commit()
        await asyncio.wait_for(settling, 10)
        with psycopg.connect(pg_url) as conn:
            errors = conn.execute("SELECT error FROM bw_tasks ORDER BY key").fetchall()
        assert errors == [("not sent",), ("not sent",)]
    finally:
        store.close()


async def test_a_runner_that_downloads_waits_for_the_videos_other_runners_are_fetching(
    tmp_path: Path, pg_url: str
) -> None:
    """B owns a succeeded row whose video it is fetching: A, which downloads, stays (None);
    one run with --no-download leaves (False). A failed fetch (its error noted) is waited on by
    nobody, and once B hands back, A adopts the video (True)."""
    from batchwan.values import Status
    from tests.storehelpers import checked_rows

    rows = checked_rows(tmp_path, 2)
    keys = [r.key for r in rows]
    a, b = (_runner(pg_url, tmp_path / name, rows) for name in ("a", "b"))
    try:
        for key in keys:
            await b.begin_create(key)
            await b.create_accepted(key, f"task-{key[:6]}")
            await b.task_finished(key, Status.SUCCEEDED, video_url="http://v.example/1.mp4")
        assert a.more_to_follow(downloads=True) is None
        assert a.more_to_follow(downloads=False) is False
        await b.note(keys[0], None, video_file="videos/1.mp4")
        await b.note(keys[1], "video not downloaded: the host refused; run again")
        assert a.more_to_follow(downloads=True) is False  # a failed fetch holds nobody
        b.close()
        assert a.more_to_follow(downloads=True) is True  # adopted: A fetches it again
        assert [e.key for e in a.tasks_to_follow()] == [keys[1]]
    finally:
        a.close()


@pytest.mark.parametrize(
    ("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)]
)
def test_without_postgresql_the_tests_skip_locally_and_fail_in_ci(
    monkeypatch: pytest.MonkeyPatch, ci: str, outcome: type[BaseException]
) -> None:
    """No initdb anywhere: a skip with the reason on a workstation, a failure in CI."""
    from tests import pgserver

    monkeypatch.setattr(pgserver, "find_bindir", lambda: None)
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="initdb"), pgserver.running_server():
        pass
