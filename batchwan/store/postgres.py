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
import os
import socket
import threading
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
from batchwan.store.pglimits import SharedCreateWindow, SharedInFlight
from batchwan.store.pgschema import check_url, migrate, open_pool, write_pointer
from batchwan.store.records import Snapshot, image_label, request_as_sent
from batchwan.store.schema import (
    LOST_ANSWER,
    SCHEMA_VERSION,
    TASK_COLUMNS,
    TaskEntry,
    iso_utc,
    now_utc,
)
from batchwan.store.sheetmatch import match_sheet
from batchwan.values import CheckedRow, RowRecord, Status

log = logging.getLogger(__name__)
T = TypeVar("T")

#: How long a runner's lease lasts without a heartbeat; renewed every third of it.
LEASE_SECONDS = float(os.environ.get("BATCHWAN_LEASE_SECONDS", "15"))
_COLS = [c.strip() for c in TASK_COLUMNS.split(",")]
_INSERT_TASK = (
    f"INSERT INTO bw_tasks (run, {TASK_COLUMNS}) VALUES (%s, {', '.join(['%s'] * len(_COLS))}) "
    f"ON CONFLICT (run, key) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in _COLS if c != "key")
    + " WHERE bw_tasks.status = 'pending' AND NOT bw_tasks.sending"
)
_SHEET_COLS = (
    "position, key, row_id, status, prompt, image, cost, resolution, duration, error, extra, "
    "model, request, line"
)
_INSERT_SHEET_ROW = (
    f"INSERT INTO bw_sheet_rows (run, {_SHEET_COLS}) VALUES (%s{', %s' * 14}) "
    "ON CONFLICT (run, position) DO UPDATE SET "
    + ", ".join(f"{c.strip()} = EXCLUDED.{c.strip()}" for c in _SHEET_COLS.split(",")[1:])
)
_OPEN = "(sending OR status = 'running')"
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
            with self._conn() as conn:
                migrate(conn)
                found = conn.execute("SELECT name, value FROM bw_meta WHERE run = %s", (self.run,))
                self.meta: dict[str, str] = {r["name"]: r["value"] for r in found}
                self._cache = {
                    r["key"]: _entry(r)
                    for r in conn.execute("SELECT * FROM bw_tasks WHERE run = %s", (self.run,))
                }
                conn.execute(
                    "INSERT INTO bw_runners (run, runner, host, pid, lease) "
                    "VALUES (%s, %s, %s, %s, now() + make_interval(secs => %s))",
                    (self.run, self.runner, socket.gethostname(), os.getpid(), LEASE_SECONDS),
                )
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
        self._stop = threading.Event()
        self._heart = threading.Thread(target=self._heartbeat, name="batchwan-lease", daemon=True)
        self._heart.start()

    @contextlib.contextmanager
    def _conn(self) -> Any:
        """A pooled connection whose rows are dicts; a database error becomes StateError."""
        try:
            with self._pool.connection() as conn:
                conn.row_factory = dict_row  # type: ignore[assignment]  # rows as dicts, by name
                yield conn
        except psycopg.Error as exc:
            message = f"shared run {self.run!r}: the record could not be read or written: {exc}"
            raise StateError(message) from exc

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking database step on the store's own threads, off the event loop.

        A database that cannot be reached is the record failing: StateError stops the run.
        """
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        except psycopg.Error as exc:
            raise StateError(
                f"shared run {self.run!r}: the record could not be written: {exc}"
            ) from exc

    def _heartbeat(self) -> None:
        while not self._stop.wait(LEASE_SECONDS / 3):
            try:
                with self._conn() as conn:
                    renewed = conn.execute(
                        "UPDATE bw_runners SET lease = now() + make_interval(secs => %s) "
                        "WHERE run = %s AND runner = %s",
                        (LEASE_SECONDS, self.run, self.runner),
                    ).rowcount
                    if not renewed:  # taken for dead (a long pause): come back, say so
                        log.warning("this runner's lease had run out; its rows may be adopted")
                        conn.execute(
                            "INSERT INTO bw_runners (run, runner, host, pid, lease) VALUES "
                            "(%s, %s, %s, %s, now() + make_interval(secs => %s))",
                            (self.run, self.runner, socket.gethostname(), os.getpid(),
                             LEASE_SECONDS),
                        )  # fmt: skip
            except Exception as exc:  # the database may come back: keep trying
                log.warning("could not renew this runner's lease: %s", exc)

    def close(self) -> None:
        """Hand back what this runner held: its running tasks to whoever runs next."""
        self._stop.set()
        self._heart.join(timeout=LEASE_SECONDS)
        try:
            with self._conn() as conn, conn.transaction():
                conn.execute(
                    "UPDATE bw_tasks SET sending = FALSE, status = 'unknown', error = %s, "
                    "owner = NULL WHERE run = %s AND owner = %s AND sending",
                    (LOST_ANSWER, self.run, self.runner),
                )
                conn.execute("UPDATE bw_tasks SET owner = NULL WHERE run = %s AND owner = %s",
                             (self.run, self.runner))  # fmt: skip
                conn.execute("DELETE FROM bw_runners WHERE run = %s AND runner = %s",
                             (self.run, self.runner))  # fmt: skip
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
        with self._conn() as conn:
            recorded = [r["key"] for r in conn.execute(
                "SELECT DISTINCT key FROM bw_sheet_rows WHERE run = %s", (self.run,))]  # fmt: skip
        found = match_sheet(f"shared run {self.run!r}", self.meta.get("sheet"), sheet_text,
                            recorded, keys if keys is not None else recorded)  # fmt: skip
        if found.warning and not found.same_path:
            log.info("%s", found.warning)  # on a shared run each machine has its own path
        stamp = iso_utc(now_utc()) or ""
        updates = {"sheet": sheet_text, "model": model, "run_started_at": stamp,
                   "max_cost": "" if max_cost is None else str(max_cost)}  # fmt: skip
        if "started_at" not in self.meta:
            updates.update(started_at=stamp, schema=SCHEMA_VERSION)
        with self._conn() as conn, conn.transaction():
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
        warnings: list[str] = []
        notes: dict[int, str] = {}
        with self._conn() as conn:
            recorded = {
                r["position"]: r
                for r in conn.execute("SELECT * FROM bw_sheet_rows WHERE run = %s", (self.run,))
            }
        tasks: list[list[Any]] = []
        sheet: list[tuple[Any, ...]] = []
        model = self.meta.get("model", "")
        for row, cost in zip(rows, costs, strict=True):
            note = "; ".join(row.notes) or None
            if row.status is Status.PENDING:
                entry = self._cache.get(row.key)
                if entry is None or (entry.status is Status.PENDING and not entry.sending):
                    fresh = TaskEntry(
                        row.key, row.content_hash, Status.PENDING, model, cost, row.resolution,
                        row.duration, attempts=entry.attempts if entry else 0,
                        prior_cost=entry.prior_cost if entry else 0.0,
                    )  # fmt: skip
                    if fresh != entry:
                        tasks.append([self.run, *_params(fresh)])
                elif entry.content_hash != row.content_hash:
                    note = (
                        f"content changed since id {row.row_id} was sent as task "
                        f"{entry.task_id or '(unknown)'}; the earlier result is kept. "
                        "Give the changed row a new id to generate it"
                    )
                    warnings.append(f"row {row.position}: id: {note}")
            else:
                note = "; ".join(str(issue.message) for issue in row.issues) or note
            if note:
                notes[row.position] = note
            values = (
                row.position, row.key, row.row_id, row.status.value,
                str(row.request.get("prompt", "")), image_label(row), cost, row.resolution,
                row.duration, note, json.dumps(row.extra), row.model,
                json.dumps(request_as_sent(row)), row.line,
            )  # fmt: skip
            old = recorded.get(row.position)
            if old is None or tuple(old[c.strip()] for c in _SHEET_COLS.split(",")) != values:
                sheet.append((self.run, *values))
        columns = json.dumps(list(extra_columns))
        with self._conn() as conn, conn.transaction(), conn.cursor() as cur:
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
        self._notes = notes
        return warnings

    def _reload(self) -> None:
        with self._conn() as conn:
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
        with self._conn() as conn, conn.transaction():
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
        """Take over the rows of runners whose lease ran out: (rows now unknown, rows adopted)."""
        with self._conn() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.run,))
            expired = "SELECT runner FROM bw_runners WHERE run = %s AND lease < now()"
            dead = [r["runner"] for r in conn.execute(expired, (self.run,))]
            lost = conn.execute(
                "UPDATE bw_tasks SET sending = FALSE, status = 'unknown', error = %s, "
                "owner = NULL WHERE run = %s AND sending AND (owner IS NULL OR owner = ANY(%s))",
                (LOST_ANSWER, self.run, dead),
            ).rowcount
            adopted = conn.execute(
                "UPDATE bw_tasks SET owner = %s WHERE run = %s "
                "AND (owner IS NULL OR owner = ANY(%s)) AND NOT sending AND (status = 'running' "
                "OR (status = 'succeeded' AND video_file IS NULL AND video_url IS NOT NULL))",
                (self.runner, self.run, dead),
            ).rowcount
            conn.execute("DELETE FROM bw_runners WHERE run = %s AND runner = ANY(%s)",
                         (self.run, dead))  # fmt: skip
        if lost or adopted:
            log.warning("took over %d task(s) from runners that stopped; %d row(s) they were "
                        "sending are now `unknown`", adopted, lost)  # fmt: skip
        return lost, adopted

    def more_to_follow(self) -> bool | None:
        """True once this runner adopted tasks; None while other runners have tasks open (ask
        again soon: one of them may die); False when no task of the run is open."""
        _, adopted = self._adopt()
        if adopted:
            self._reload()
            return True
        return None if self.open_tasks() else False

    def begin_run(self, options: dict[str, Any]) -> int:
        """Open this invocation's line in the shared record."""
        with self._conn() as conn, conn.transaction():
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
        with self._conn() as conn:
            conn.execute(
                "UPDATE bw_run_lines SET ended_at = %s, sent = %s, collected = %s "
                "WHERE run = %s AND number = %s",
                (iso_utc(now_utc()), sent, collected, self.run, number),
            )

    def limits(self, concurrency: int, rate: float) -> tuple[InFlight, CreateWindow]:
        """Limits counted in the database, across every runner of the run."""
        self._concurrency = concurrency
        return SharedInFlight(self, concurrency), SharedCreateWindow(self, rate)

    # -- what the shared limits ask --------------------------------------------------------------

    def open_tasks(self) -> int:
        """Tasks of the run being sent or running, across every runner."""
        with self._conn() as conn:
            (row,) = conn.execute(
                f"SELECT count(*) AS n FROM bw_tasks WHERE run = %s AND {_OPEN}", (self.run,)
            )
        return int(row["n"])

    def take_permit(self, permits: int) -> tuple[int | None, float]:
        """A create permit whose time has come (slot, 0), or (None, seconds to wait)."""
        with self._conn() as conn, conn.transaction():
            conn.execute(
                "INSERT INTO bw_permits (run, slot) SELECT %s, s FROM generate_series(0, %s) s "
                "ON CONFLICT DO NOTHING",
                (self.run, permits - 1),
            )
            got = conn.execute(
                "UPDATE bw_permits SET free_at = clock_timestamp() + interval '60 seconds', "
                "holder = %s WHERE run = %s AND slot = (SELECT slot FROM bw_permits WHERE "
                "run = %s AND slot < %s AND free_at <= clock_timestamp() ORDER BY free_at "
                "LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING slot",
                (self.runner, self.run, self.run, permits),
            ).fetchone()
            if got is not None:
                return int(got["slot"]), 0.0
            (row,) = conn.execute(
                "SELECT EXTRACT(EPOCH FROM MIN(free_at) - clock_timestamp()) AS wait "
                "FROM bw_permits WHERE run = %s AND slot < %s",
                (self.run, permits),
            )
        return None, float(row["wait"] or 0.0)

    def free_permit(self, slot: int, period: float) -> None:
        """A create on ``slot`` was answered: the slot may serve again ``period`` from now."""
        with self._conn() as conn:
            conn.execute(
                "UPDATE bw_permits SET free_at = clock_timestamp() + make_interval(secs => %s), "
                "holder = NULL WHERE run = %s AND slot = %s",
                (period, self.run, slot),
            )

    # -- transitions (each one committed before it returns) --------------------------------------

    def _claim_sync(self, key: str, max_cost: float | None) -> Claim | None:
        """One try at the claim; None when the run is at its in-flight limit (wait, try again)."""
        with self._conn() as conn, conn.transaction():
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
                    f"SELECT count(*) AS n FROM bw_tasks WHERE run = %s AND {_OPEN}", (self.run,)
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
        while (claim := await self._call(self._claim_sync, key, max_cost)) is None:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        # A row another runner took sent nothing: its create permit may serve again at once.
        self.sent_on_permit[asyncio.current_task()] = claim is Claim.SENDING
        return claim

    def _update_sync(self, key: str, sets: str, params: Sequence[Any]) -> None:
        with self._conn() as conn:
            row = conn.execute(
                f"UPDATE bw_tasks SET {sets} WHERE run = %s AND key = %s RETURNING *",
                (*params, self.run, key),
            ).fetchone()
        if row is None:
            raise StateError(f"shared run {self.run!r}: row {key} vanished from the record")
        self._cache[key] = _entry(row)
        self._records = None

    async def _update(self, key: str, sets: str, *params: Any) -> None:
        await self._call(self._update_sync, key, sets, params)

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
            with self._conn() as conn:
                conn.execute(
                    "UPDATE bw_tasks SET error = %s WHERE run = %s AND key = ANY(%s) "
                    "AND status = 'pending' AND NOT sending",
                    (error, self.run, wanted),
                )
            self._reload()

        await self._call(run)

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

    def tasks_to_follow(self) -> list[TaskEntry]:
        """Rows this runner owns (or just adopted) that are running or need their video."""
        self._adopt()
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT * FROM bw_tasks WHERE run = %s AND owner = %s AND "
                "(status = 'running' OR (status = 'succeeded' AND video_file IS NULL))",
                (self.run, self.runner),
            ).fetchall()
        found = [_entry(r) for r in rows]
        self._cache.update({e.key: e for e in found})
        return [copy.copy(e) for e in found]

    def tally(self) -> tuple[int, int]:
        """(create requests sent, rows finished) over the whole shared run."""
        with self._conn() as conn:
            (row,) = conn.execute(
                "SELECT COALESCE(SUM(attempts), 0) AS sent, count(*) FILTER (WHERE status IN "
                "('succeeded', 'failed')) AS done FROM bw_tasks WHERE run = %s",
                (self.run,),
            )
        return int(row["sent"]), int(row["done"])

    def committed_cost(self) -> float:
        """USD of every create of the run that was or may have been billed, all runners."""
        with self._conn() as conn:
            (row,) = conn.execute(_COMMITTED_SUM, (self.run,))
        return float(row["total"])

    def snapshot(self) -> Snapshot:
        """The whole run as the database holds it now, over this runner's sheet."""
        with self._conn() as conn:
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
