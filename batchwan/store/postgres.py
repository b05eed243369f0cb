"""The shared record in PostgreSQL: any number of runners, on any machines, form one run.

A run is named by its run folder's name (``--out runs/spring`` on every machine: ``spring``),
and its rows by their keys. Each row is sent at most once across all runners: the claim
(``SELECT ... FOR UPDATE SKIP LOCKED``), the budget, the tasks-in-flight limit and the
"sending" mark are one committed transaction, serialised per run by an advisory lock, before
the create goes out. Each runner holds a lease it renews from a thread; the rows of a runner
whose lease ran out are adopted by the others: its accepted tasks are polled and downloaded,
its rows caught mid-send become ``unknown`` (never resent without ``--resubmit-unknown``).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from psycopg.rows import dict_row

from batchwan.errors import StateError
from batchwan.pool.limits import CreateWindow, InFlight
from batchwan.store.base import Claim
from batchwan.store.pglease import Heartbeat, adopt, hand_back, register
from batchwan.store.pglimits import (
    FOLLOWED,
    SharedCreateWindow,
    SharedInFlight,
    open_tasks,
    videos_fetched_elsewhere,
)
from batchwan.store.pgschema import check_url, migrate, open_pool, write_pointer
from batchwan.store.records import Snapshot
from batchwan.store.schema import (
    TASK_COLUMNS,
    TaskEntry,
    iso_utc,
    now_utc,
)
from batchwan.store.sheetmatch import claim_updates, match_sheet
from batchwan.store.sheetsync import SHEET_COLUMNS, plan_sync
from batchwan.values import CheckedRow, RowRecord, Status

log = logging.getLogger(__name__)
T = TypeVar("T")

_COLS = [c.strip() for c in TASK_COLUMNS.split(",")]
_INSERT_TASK = (
    f"INSERT INTO bw_tasks (run, {TASK_COLUMNS}) VALUES (%s, {', '.join(['%s'] * len(_COLS))}) "
    f"ON CONFLICT (run, key) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in _COLS if c != "key")
    + " WHERE bw_tasks.status = 'pending' AND NOT bw_tasks.sending"
)
_INSERT_SHEET_ROW = (
    f"INSERT INTO bw_sheet_rows (run, {', '.join(SHEET_COLUMNS)}) "
    f"VALUES (%s{', %s' * len(SHEET_COLUMNS)}) ON CONFLICT (run, position) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in SHEET_COLUMNS[1:])
)
_COMMITTED_SUM = (
    "SELECT COALESCE(SUM(prior_cost + CASE WHEN sending OR status IN "
    "('running', 'succeeded', 'unknown') THEN cost ELSE 0 END), 0) AS total "
    "FROM bw_tasks WHERE run = %s"
)


def _params(entry: TaskEntry) -> list[Any]:
    params = list(entry.as_params())
    params[_COLS.index("sending")] = entry.sending
    return params


def _entry(row: dict[str, Any]) -> TaskEntry:
    return TaskEntry.from_db(row)


class PostgresStore:
    """One runner's handle on a shared run; safe with any number of others on the same run."""

    def __init__(self, url: str, run_dir: Path, *, run: str | None = None) -> None:
        self.url = check_url(url)
        self.run_dir = run_dir
        self.run = run or run_dir.resolve().name
        self.runner = uuid.uuid4().hex[:16]
        self._pool = open_pool(url, size=10)
        self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="batchwan-pg")
        try:
            with self.connection() as conn:
                migrate(conn)
                found = conn.execute("SELECT name, value FROM bw_meta WHERE run = %s", (self.run,))
                self.meta: dict[str, str] = {r["name"]: r["value"] for r in found}
                self._cache = {
                    r["key"]: _entry(r)
                    for r in conn.execute("SELECT * FROM bw_tasks WHERE run = %s", (self.run,))
                }
                register(conn, self.run, self.runner)
        except BaseException:
            self._executor.shutdown()
            self._pool.close()
            raise
        write_pointer(run_dir, url, self.run)
        self.sheet_rows: list[CheckedRow] = []
        self._notes: dict[int, str] = {}
        self._concurrency: int | None = None
        self._records: tuple[float, list[RowRecord]] | None = None
        #: Per worker task: whether its last claim sent a create (read by the create window).
        self.sent_on_permit: dict[asyncio.Task[Any] | None, bool] = {}
        self._heart = Heartbeat(self.connection, self.run, self.runner)

    @contextlib.contextmanager
    def connection(self) -> Any:
        """A pooled connection whose rows are dicts; a database error becomes StateError."""
        try:
            with self._pool.connection() as conn:
                conn.row_factory = dict_row  # type: ignore[assignment]  # rows as dicts, by name
                yield conn
        except psycopg.Error as exc:
            message = f"shared run {self.run!r}: the record could not be read or written: {exc}"
            raise StateError(message) from exc

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking database step on the store's own threads, off the event loop.

        A database that cannot be reached is the record failing: StateError stops the run.
        """
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        except psycopg.Error as exc:
            raise StateError(
                f"shared run {self.run!r}: the record could not be written: {exc}"
            ) from exc

    def close(self) -> None:
        """Hand back what this runner held: its running tasks to whoever runs next."""
        self._heart.stop()
        try:
            with self.connection() as conn:
                hand_back(conn, self.run, self.runner)
        finally:
            self._executor.shutdown()
            self._pool.close()

    # -- the start of a run ----------------------------------------------------------------------

    def claim(
        self,
        sheet: Path,
        model: str,
        max_cost: float | None = None,
        keys: Sequence[str] | None = None,
    ) -> None:
        """Tie the shared run to its sheet, recognised by its rows; refuse another sheet."""
        sheet_text = str(sheet.resolve())
        with self.connection() as conn:
            recorded = [r["key"] for r in conn.execute(
                "SELECT DISTINCT key FROM bw_sheet_rows WHERE run = %s", (self.run,))]  # fmt: skip
        found = match_sheet(f"shared run {self.run!r}", self.meta.get("sheet"), sheet_text,
                            recorded, keys if keys is not None else recorded)  # fmt: skip
        if found.warning and not found.same_path:
            log.info("%s", found.warning)  # on a shared run each machine has its own path
        updates = claim_updates(self.meta, sheet_text, model, max_cost)
        with self.connection() as conn, conn.transaction():
            for name, value in updates.items():
                keep = name in ("started_at", "schema")
                action = (
                    "DO NOTHING" if keep else "(run, name) DO UPDATE SET value = EXCLUDED.value"
                )
                conn.execute(
                    "INSERT INTO bw_meta (run, name, value) VALUES (%s, %s, %s) "
                    f"ON CONFLICT {action}",
                    (self.run, name, value),
                )
        self.meta.update(updates)

    def sync_sheet(
        self, rows: Sequence[CheckedRow], costs: Sequence[float], extra_columns: Sequence[str]
    ) -> list[str]:
        """Record the sheet as read now, writing only the rows that changed."""
        with self.connection() as conn:
            recorded = {
                r["position"]: tuple(r[c] for c in SHEET_COLUMNS)
                for r in conn.execute("SELECT * FROM bw_sheet_rows WHERE run = %s", (self.run,))
            }
        plan = plan_sync(rows, costs, self._cache, self.meta.get("model", ""))
        # In key order, as every statement that locks many rows of the run does: two runners
        # locking the same rows in different orders would deadlock (settle_pending, below).
        tasks = [[self.run, *_params(plan.entries[key])] for key in sorted(plan.entries)]
        sheet = [(self.run, *v) for v in plan.values if recorded.get(v[0]) != v]
        columns = json.dumps(list(extra_columns))
        with self.connection() as conn, conn.transaction(), conn.cursor() as cur:
            if tasks:
                cur.executemany(_INSERT_TASK, tasks)
            if sheet:
                cur.executemany(_INSERT_SHEET_ROW, sheet)
            if len(recorded) > len(rows):
                cur.execute("DELETE FROM bw_sheet_rows WHERE run = %s AND position > %s",
                            (self.run, len(rows)))  # fmt: skip
            cur.execute(
                "INSERT INTO bw_meta (run, name, value) VALUES (%s, 'columns', %s) "
                "ON CONFLICT (run, name) DO UPDATE SET value = EXCLUDED.value",
                (self.run, columns),
            )
        self._reload()
        self.meta["columns"] = columns
        self.sheet_rows = list(rows)
        self._notes = plan.notes
        return plan.warnings

    def _reload(self) -> None:
        with self.connection() as conn:
            self._cache = {
                r["key"]: _entry(r)
                for r in conn.execute("SELECT * FROM bw_tasks WHERE run = %s", (self.run,))
            }
        self._records = None

    def recover(self, *, resubmit_unknown: bool, retry_failed: bool) -> int:
        """Adopt what dead runners left; reopen unknown or failed rows when asked.

        An unknown row sent again keeps its first attempt's cost counted in the budget.
        """
        lost, _ = self._adopt()
        reset = (
            "status = 'pending', task_id = NULL, video_url = NULL, video_file = NULL, "
            "finished_at = NULL, submitted_at = NULL, error = NULL"
        )
        with self.connection() as conn, conn.transaction():
            if resubmit_unknown or retry_failed:  # locked in key order first (see sync_sheet)
                conn.execute(
                    "SELECT key FROM bw_tasks WHERE run = %s AND ((status = 'unknown' AND %s "
                    "AND NOT sending) OR (status = 'failed' AND %s)) ORDER BY key FOR UPDATE",
                    (self.run, resubmit_unknown, retry_failed),
                )
            if resubmit_unknown:
                conn.execute(
                    f"UPDATE bw_tasks SET {reset}, prior_cost = prior_cost + cost "
                    "WHERE run = %s AND status = 'unknown' AND NOT sending",
                    (self.run,),
                )
            if retry_failed:
                conn.execute(
                    f"UPDATE bw_tasks SET {reset} WHERE run = %s AND status = 'failed'",
                    (self.run,),
                )
        self._reload()
        return lost

    def _adopt(self) -> tuple[int, int]:
        with self.connection() as conn:
            return adopt(conn, self.run, self.runner)

    def more_to_follow(self, *, downloads: bool = False) -> bool | None:
        """True once this runner adopted tasks; None while other runners have tasks open (ask
        again soon: one of them may die) or, with ``downloads``, are still fetching a video;
        False when nothing of the run is open."""
        _, adopted = self._adopt()
        if adopted:
            self._reload()
            return True
        # A runner that downloads stays until the others' videos are in: leaving earlier would
        # report rows succeeded without their video (exit 1) that are seconds from done.
        busy = open_tasks(self) or (downloads and videos_fetched_elsewhere(self))
        return None if busy else False

    def set_meta(self, name: str, value: str) -> None:
        """Keep one setting of the run in the record's meta (e.g. its --group-by)."""
        with self.connection() as conn, conn.transaction():
            conn.execute(
                "INSERT INTO bw_meta (run, name, value) VALUES (%s, %s, %s) "
                "ON CONFLICT (run, name) DO UPDATE SET value = EXCLUDED.value",
                (self.run, name, value),
            )
        self.meta[name] = value

    def begin_run(self, options: dict[str, Any]) -> int:
        """Open this invocation's line in the shared record."""
        with self.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.run,))
            (row,) = conn.execute(
                "INSERT INTO bw_run_lines (run, number, started_at, options, runner) SELECT "
                "%s, COALESCE(MAX(number), 0) + 1, %s, %s, %s FROM bw_run_lines WHERE run = %s "
                "RETURNING number",
                (self.run, iso_utc(now_utc()), json.dumps(options, sort_keys=True, default=str),
                 self.runner, self.run),
            )  # fmt: skip
        return int(row["number"])

    def end_run(self, number: int, *, sent: int, collected: int) -> None:
        """Close this invocation's line."""
        with self.connection() as conn:
            conn.execute(
                "UPDATE bw_run_lines SET ended_at = %s, sent = %s, collected = %s "
                "WHERE run = %s AND number = %s",
                (iso_utc(now_utc()), sent, collected, self.run, number),
            )

    def limits(self, concurrency: int, rate: float) -> tuple[InFlight, CreateWindow]:
        """Limits counted in the database, across every runner of the run."""
        self._concurrency = concurrency
        return SharedInFlight(self, concurrency), SharedCreateWindow(self, rate)

    # -- transitions (each one committed before it returns) --------------------------------------

    def _claim_sync(self, key: str, max_cost: float | None) -> Claim | None:
        """One try at the claim; None when the run is at its in-flight limit (wait, try again)."""
        with self.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.run,))
            row = conn.execute(
                "SELECT * FROM bw_tasks WHERE run = %s AND key = %s AND status = 'pending' "
                "AND NOT sending FOR UPDATE SKIP LOCKED",
                (self.run, key),
            ).fetchone()
            if row is None:
                # Skipped because another transaction (a runner starting up) has it locked for
                # a moment, or truly taken? Only a pending row is worth another try.
                (still,) = conn.execute(
                    "SELECT count(*) AS n FROM bw_tasks WHERE run = %s AND key = %s "
                    "AND status = 'pending' AND NOT sending",
                    (self.run, key),
                )
                return None if still["n"] else Claim.TAKEN
            if self._concurrency is not None:
                (n,) = conn.execute(
                    f"SELECT count(*) AS n FROM bw_tasks WHERE run = %s AND {FOLLOWED}",
                    (self.run,),
                )
                if n["n"] >= self._concurrency:
                    return None
            if max_cost is not None:
                (total,) = conn.execute(_COMMITTED_SUM, (self.run,))
                if float(total["total"]) + row["cost"] > max_cost + 1e-9:
                    return Claim.BUDGET
            marked = conn.execute(
                "UPDATE bw_tasks SET sending = TRUE, attempts = attempts + 1, error = NULL, "
                "owner = %s WHERE run = %s AND key = %s RETURNING *",
                (self.runner, self.run, key),
            ).fetchone()
        self._cache[key] = _entry(marked)
        return Claim.SENDING

    async def begin_create(self, key: str, *, max_cost: float | None = None) -> Claim:
        """Claim the row for sending, within the run's budget and in-flight limit."""
        # Waiting for room is a poll of the database: other runners free it, no local event can.
        while (claim := await self.call(self._claim_sync, key, max_cost)) is None:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        # A row another runner took sent nothing: its create permit may serve again at once.
        self.sent_on_permit[asyncio.current_task()] = claim is Claim.SENDING
        return claim

    def _update_sync(self, key: str, sets: str, params: Sequence[Any]) -> None:
        with self.connection() as conn:
            row = conn.execute(
                f"UPDATE bw_tasks SET {sets} WHERE run = %s AND key = %s RETURNING *",
                (*params, self.run, key),
            ).fetchone()
        if row is None:
            raise StateError(f"shared run {self.run!r}: row {key} vanished from the record")
        self._cache[key] = _entry(row)
        self._records = None

    async def _update(self, key: str, sets: str, *params: Any) -> None:
        await self.call(self._update_sync, key, sets, params)

    async def create_accepted(self, key: str, task_id: str) -> None:
        """Record the task id: the row is running and never sent again, by any runner."""
        await self._update(
            key, "sending = FALSE, status = 'running', task_id = %s, submitted_at = %s, "
            "owner = %s", task_id, iso_utc(now_utc()), self.runner,
        )  # fmt: skip

    async def create_settled(self, key: str, status: Status, error: str | None) -> None:
        """The create ended without a task: pending, failed or unknown."""
        finished = iso_utc(now_utc()) if status is Status.FAILED else None
        await self._update(key, "sending = FALSE, status = %s, error = %s, "
                           "finished_at = COALESCE(%s, finished_at)", status.value, error,
                           finished)  # fmt: skip

    async def settle_pending(self, keys: Iterable[str], error: str) -> None:
        """Give every still-pending row among ``keys`` the same reason, in one write."""
        wanted = list(keys)

        def run() -> None:
            with self.connection() as conn:
                # The rows locked in key order first, as sync_sheet writes them: an UPDATE
                # alone locks them in whatever order its scan meets them.
                conn.execute(
                    "UPDATE bw_tasks SET error = %s WHERE run = %s AND key IN ("
                    "SELECT key FROM bw_tasks WHERE run = %s AND key = ANY(%s) "
                    "AND status = 'pending' AND NOT sending ORDER BY key FOR UPDATE) "
                    "AND status = 'pending' AND NOT sending",
                    (error, self.run, self.run, wanted),
                )
            self._reload()

        await self.call(run)

    async def task_finished(
        self, key: str, status: Status, *, video_url: str | None = None, error: str | None = None
    ) -> None:
        """The provider says the task ended."""
        await self._update(key, "status = %s, video_url = %s, error = %s, finished_at = %s",
                           status.value, video_url, error, iso_utc(now_utc()))  # fmt: skip

    async def note(self, key: str, error: str | None, *, video_file: str | None = None) -> None:
        """Record a remark on a row, or the video this runner downloaded."""
        await self._update(key, "error = %s, video_file = COALESCE(%s, video_file)", error,
                           video_file)  # fmt: skip

    # -- reading ---------------------------------------------------------------------------------

    def entry(self, key: str) -> TaskEntry:
        """A copy of the last known view of one row key."""
        return copy.copy(self._cache[key])

    def status(self, key: str) -> Status:
        """The last known status of one row key, without copying its entry."""
        return self._cache[key].status

    def tasks_to_follow(self, *, downloads: bool = True) -> list[TaskEntry]:
        """Rows this runner owns (or just adopted) that are running or (with ``downloads``)
        need their video."""
        self._adopt()
        with self.connection() as conn:
            rows = conn.execute(
                "SELECT * FROM bw_tasks WHERE run = %s AND owner = %s AND "
                "(status = 'running' OR (status = 'succeeded' AND video_file IS NULL))",
                (self.run, self.runner),
            ).fetchall()
        found = [_entry(r) for r in rows]
        self._cache.update({e.key: e for e in found})
        return [copy.copy(e) for e in found if downloads or e.status is Status.RUNNING]

    def video_files(self) -> set[str]:
        """Every video file name some row of the run has been given (never given twice)."""
        with self.connection() as conn:
            rows = conn.execute(
                "SELECT video_file FROM bw_tasks WHERE run = %s AND video_file IS NOT NULL",
                (self.run,),
            ).fetchall()
        return {r["video_file"] for r in rows}

    def tally(self) -> tuple[int, int]:
        """(create requests sent, rows finished) over the whole shared run."""
        with self.connection() as conn:
            (row,) = conn.execute(
                "SELECT COALESCE(SUM(attempts), 0) AS sent, count(*) FILTER (WHERE status IN "
                "('succeeded', 'failed')) AS done FROM bw_tasks WHERE run = %s",
                (self.run,),
            )
        return int(row["sent"]), int(row["done"])

    def committed_cost(self) -> float:
        """USD of every create of the run that was or may have been billed, all runners."""
        with self.connection() as conn:
            (row,) = conn.execute(_COMMITTED_SUM, (self.run,))
        return float(row["total"])

    def take_changed(self) -> set[str] | None:
        """Other runners change the shared record too: any row may have changed."""
        return None

    def snapshot(self) -> Snapshot:
        """The whole run as the database holds it now, over this runner's sheet."""
        with self.connection() as conn:
            entries = {
                r["key"]: _entry(r)
                for r in conn.execute("SELECT * FROM bw_tasks WHERE run = %s", (self.run,))
            }
        return Snapshot(self.run_dir, dict(self.meta), list(self.sheet_rows), entries,
                        dict(self._notes))  # fmt: skip

    def records(self) -> list[RowRecord]:
        """The sheet's rows with what the shared record knows; built at most once a second."""
        now = time.monotonic()
        if self._records is None or now - self._records[0] > 1.0:
            self._records = (now, self.snapshot().records())
        return self._records[1]
