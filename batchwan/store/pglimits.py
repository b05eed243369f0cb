"""The provider's limits counted in the shared database, so they hold across every runner.

Same shape as ``pool.limits``' objects, so the runner uses them unchanged. Tasks in flight are
the run's rows being sent or running, counted in the database; the store's claim checks that
count in the same transaction as the "sending" mark, so this object only spares the workers
claims that would have to wait. Create permits are rows of ``bw_permits``: a create goes out on
a permit whose time has come, and the permit serves again one period after its answer.
"""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, Any

from batchwan.pool.limits import CreateWindow, InFlight

if TYPE_CHECKING:
    from batchwan.store.postgres import PostgresStore

#: How often a worker waiting for room asks again (seconds; jittered).
_RECHECK = 0.05
#: The rows of a run that count as tasks in flight.
OPEN = "(sending OR status = 'running')"
#: Of those, the ones a live runner follows: what the in-flight limit counts. A dead runner's
#: tasks (or those handed back) are followed once a runner adopts them, when it is done with
#: its own rows; counted meanwhile, a few crashes could fill every place and stop the run.
FOLLOWED = (
    f"{OPEN} AND owner IN (SELECT runner FROM bw_runners r WHERE r.run = bw_tasks.run "
    "AND r.lease >= now())"
)


def open_tasks(store: PostgresStore) -> int:
    """Tasks of the run being sent or running, across every runner."""
    with store.connection() as conn:
        (row,) = conn.execute(
            f"SELECT count(*) AS n FROM bw_tasks WHERE run = %s AND {OPEN}", (store.run,)
        )
    return int(row["n"])


def tasks_in_flight(store: PostgresStore) -> int:
    """Tasks of the run being sent or running that live runners follow (see ``FOLLOWED``)."""
    with store.connection() as conn:
        (row,) = conn.execute(
            f"SELECT count(*) AS n FROM bw_tasks WHERE run = %s AND {FOLLOWED}", (store.run,)
        )
    return int(row["n"])


def videos_fetched_elsewhere(store: PostgresStore) -> int:
    """Videos other live runners are fetching: succeeded rows they own, with a link, no file and
    no error yet. A failed download leaves its error, so runners never wait on it (or on each
    other) for ever; a runner that died stops counting when its lease runs out."""
    with store.connection() as conn:
        (row,) = conn.execute(
            "SELECT count(*) AS n FROM bw_tasks t JOIN bw_runners r "
            "ON r.run = t.run AND r.runner = t.owner WHERE t.run = %s AND t.owner <> %s "
            "AND r.lease >= now() AND t.status = 'succeeded' AND t.video_url IS NOT NULL "
            "AND t.video_file IS NULL AND t.error IS NULL",
            (store.run, store.runner),
        )
    return int(row["n"])


def take_permit(store: PostgresStore, permits: int) -> tuple[int | None, float]:
    """A create permit whose time has come (slot, 0), or (None, seconds to wait)."""
    with store.connection() as conn, conn.transaction():
        conn.execute(
            "INSERT INTO bw_permits (run, slot) SELECT %s, s FROM generate_series(0, %s) s "
            "ON CONFLICT DO NOTHING",
            (store.run, permits - 1),
        )
        got = conn.execute(
            "UPDATE bw_permits SET free_at = clock_timestamp() + interval '60 seconds', "
            "holder = %s WHERE run = %s AND slot = (SELECT slot FROM bw_permits WHERE "
            "run = %s AND slot < %s AND free_at <= clock_timestamp() ORDER BY free_at "
            "LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING slot",
            (store.runner, store.run, store.run, permits),
        ).fetchone()
        if got is not None:
            return int(got["slot"]), 0.0
        (row,) = conn.execute(
            "SELECT EXTRACT(EPOCH FROM MIN(free_at) - clock_timestamp()) AS wait "
            "FROM bw_permits WHERE run = %s AND slot < %s",
            (store.run, permits),
        )
    return None, float(row["wait"] or 0.0)


def free_permit(store: PostgresStore, slot: int, period: float) -> None:
    """A create on ``slot`` was answered: the slot may serve again ``period`` from now."""
    with store.connection() as conn:
        conn.execute(
            "UPDATE bw_permits SET free_at = clock_timestamp() + make_interval(secs => %s), "
            "holder = NULL WHERE run = %s AND slot = %s",
            (period, store.run, slot),
        )


class SharedInFlight(InFlight):
    """Tasks in flight across every runner of the run, as the database counts them."""

    def __init__(self, store: PostgresStore, limit: int) -> None:
        super().__init__(limit)
        self._store = store

    async def acquire(self) -> bool:
        """Wait until the run has room for one more task; False once the gate is closed."""
        # Room is made by other runners too: only the database can say; ask it again and again.
        while not self._closed and await self._full():  # noqa: ASYNC110 - the room is in the database
            await asyncio.sleep(random.uniform(0.5, 1.5) * _RECHECK)
        if self._closed:
            return False
        self.count += 1
        return True

    async def _full(self) -> bool:
        return bool(await self._store.call(tasks_in_flight, self._store) >= self.limit)

    async def release(self) -> None:
        """The database already counts the row as done or not sent; only the local count."""
        self.count = max(0, self.count - 1)


class SharedCreateWindow(CreateWindow):
    """At most ``rate`` creates in any second across every runner, on shared permits."""

    def __init__(self, store: PostgresStore, rate: float) -> None:
        super().__init__(rate)
        self._store = store
        self._held: dict[asyncio.Task[Any] | None, int] = {}
        self._freeing: set[asyncio.Task[None]] = set()

    async def acquire(self) -> None:
        """Wait for a shared permit to send one create."""
        while True:
            slot, wait = await self._store.call(take_permit, self._store, self.permits)
            if slot is not None:
                self._held[asyncio.current_task()] = slot
                return
            await asyncio.sleep(min(0.25, max(0.005, wait)))

    def release_later(self) -> None:
        """The request was answered (or failed): its permit serves again after the period."""
        worker = asyncio.current_task()
        slot = self._held.pop(worker, None)
        sent = self._store.sent_on_permit.pop(worker, True)
        if slot is None:
            return
        task = asyncio.get_running_loop().create_task(
            self._store.call(free_permit, self._store, slot, self.period if sent else 0.0)
        )
        self._freeing.add(task)
        task.add_done_callback(self._freeing.discard)
