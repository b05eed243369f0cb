"""The run's durable record: one entry per row key in ``state.db`` (SQLite, WAL).

Every transition is committed before the step that depends on it: a create is marked as being
sent before it goes out, and a task id is committed before anything else happens to the row. So a
crash at any instant leaves either a row with a task id (polled, never sent again) or a row whose
create may have gone out unanswered (``unknown``, sent again only when asked).

Writes go through one writer thread that commits everything queued so far in one transaction
(group commit): each caller still waits for its own change to be durable, but 64 workers share
one fsync instead of paying one each.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import queue
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from batchwan.errors import StateError
from batchwan.store.records import Snapshot, image_label, request_as_sent
from batchwan.store.schema import (
    LOST_ANSWER,
    SCHEMA_VERSION,
    STATE_FILE,
    TASK_COLUMNS,
    TaskEntry,
    connect,
    iso_utc,
    migrate,
    now_utc,
)
from batchwan.values import COMMITTED, CheckedRow, RowRecord, Status

_PLACEHOLDERS = ",".join("?" * len(TASK_COLUMNS.split(",")))


class _Done(threading.Event):
    """A thread's wait for its writes, with the error if they failed."""

    error: BaseException | None = None


class _Writer:
    """One thread that owns the write connection and commits queued changes in groups."""

    def __init__(self, path: Path) -> None:
        self._queue: queue.SimpleQueue[
            tuple[list[tuple[str, Sequence[Any]]], asyncio.AbstractEventLoop | None, Any] | None
        ] = queue.SimpleQueue()
        self._conn = connect(path)
        self._thread = threading.Thread(target=self._loop, name="batchwan-ledger", daemon=True)
        self._thread.start()

    def submit(
        self,
        statements: list[tuple[str, Sequence[Any]]],
        loop: asyncio.AbstractEventLoop | None,
        waiter: Any,
    ) -> None:
        """Queue statements; ``waiter`` (a future or threading.Event) is settled when durable."""
        self._queue.put((statements, loop, waiter))

    def close(self) -> None:
        """Commit what is queued and stop the thread."""
        self._queue.put(None)
        self._thread.join()
        self._conn.close()

    def _loop(self) -> None:
        stop = False
        while not stop:
            items = [self._queue.get()]
            while True:  # take everything queued so far into one transaction
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = None in items
            work = [item for item in items if item is not None]
            error: BaseException | None = None
            try:
                with self._conn:
                    for statements, _, _ in work:
                        for sql, params in statements:
                            self._conn.execute(sql, params)
            except sqlite3.Error as exc:
                error = exc
            _settle_all([(loop, waiter) for _, loop, waiter in work], error)


def _settle_all(
    waiters: list[tuple[asyncio.AbstractEventLoop | None, Any]], error: BaseException | None
) -> None:
    """Tell every caller of a batch that its writes are durable (or failed).

    Coroutines on one loop are woken with one hand-off for the whole batch, not one each.
    """
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for loop, waiter in waiters:
        if loop is None:  # a thread waiting on a _Done
            waiter.error = error
            waiter.set()
        else:
            by_loop.setdefault(loop, []).append(waiter)
    for loop, futures in by_loop.items():
        # A closed loop means nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle_futures, futures, error)


def _settle_futures(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for future in futures:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(StateError(f"could not write the run's record: {error}"))


def _refuse_foreign(path: Path) -> None:
    """A state.db that holds tables but none of ours belongs to some other program.

    Looked at read-only, before anything (even the journal mode) is changed in it.
    """
    if not path.is_file():
        return
    conn = connect(path, readonly=True)
    try:
        query = "SELECT name FROM sqlite_master WHERE type='table'"
        tables = {name for (name,) in conn.execute(query)}
    finally:
        conn.close()
    if tables and not tables & {"meta", "tasks", "sheet_rows"}:
        raise StateError(f"{path}: not a batchwan run record; choose another --out")


class Ledger:
    """The run folder's record of every row key; one instance per run, one writer."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.path = run_dir / STATE_FILE
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            _refuse_foreign(self.path)
            conn = connect(self.path)
            migrate(conn)
            self.entries: dict[str, TaskEntry] = {
                row["key"]: TaskEntry.from_db(row) for row in conn.execute("SELECT * FROM tasks")
            }
            self.meta: dict[str, str] = dict(conn.execute("SELECT name, value FROM meta"))
            conn.close()
        except (sqlite3.Error, OSError) as exc:
            raise StateError(f"{self.path}: cannot open the run's record: {exc}") from exc
        self._writer = _Writer(self.path)
        self.sheet_rows: list[CheckedRow] = []
        self._notes: dict[int, str] = {}  # sheet position -> remark made when the sheet was read
        self.changed: set[str] = set()  # keys written during the run (pool.refresh)

    def close(self) -> None:
        """Flush and close the record."""
        self._writer.close()

    # -- start of a run (synchronous: nothing else is running yet) ------------------------------

    def _write_now(self, statements: list[tuple[str, Sequence[Any]]]) -> None:
        done = _Done()
        self._writer.submit(statements, None, done)
        done.wait()
        if done.error is not None:
            raise StateError(f"{self.path}: could not write the run's record: {done.error}")

    def claim(self, sheet: Path, model: str, max_cost: float | None = None) -> None:
        """Tie the run folder to its sheet; refuse a folder that belongs to another sheet."""
        owner = self.meta.get("sheet")
        sheet_text = str(sheet.resolve())
        if owner and owner != sheet_text:
            raise StateError(
                f"{self.run_dir} holds the run of {owner}, not {sheet_text}; "
                "choose another --out for this sheet"
            )
        stamp = iso_utc(now_utc()) or ""
        updates = {
            "sheet": sheet_text,
            "model": model,
            "run_started_at": stamp,
            "max_cost": "" if max_cost is None else str(max_cost),
        }
        if "started_at" not in self.meta:
            updates["started_at"] = stamp
            updates["schema"] = SCHEMA_VERSION
        self.meta.update(updates)
        self._write_now(
            [("INSERT OR REPLACE INTO meta VALUES (?, ?)", kv) for kv in updates.items()]
        )

    def sync_sheet(
        self, rows: Sequence[CheckedRow], costs: Sequence[float], extra_columns: Sequence[str]
    ) -> list[str]:
        """Record the sheet as read now: add new rows, keep every earlier record.

        Returns warnings for rows whose content changed under an id that was already sent.
        """
        warnings: list[str] = []
        self._notes = {}
        statements: list[tuple[str, Sequence[Any]]] = [("DELETE FROM sheet_rows", ())]
        model = self.meta.get("model", "")
        for row, cost in zip(rows, costs, strict=True):
            note = "; ".join(row.notes) or None
            if row.status is Status.PENDING:
                entry = self.entries.get(row.key)
                if entry is None or (entry.status is Status.PENDING and not entry.sending):
                    entry = TaskEntry(
                        row.key,
                        row.content_hash,
                        Status.PENDING,
                        model,
                        cost,
                        row.resolution,
                        row.duration,
                        attempts=entry.attempts if entry else 0,
                    )
                    self.entries[row.key] = entry
                    statements.append(self._upsert(entry))
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
                self._notes[row.position] = note
            statements.append(
                (
                    "INSERT INTO sheet_rows VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        row.position,
                        row.key,
                        row.row_id,
                        row.status.value,
                        str(row.request.get("prompt", "")),
                        image_label(row),
                        cost,
                        row.resolution,
                        row.duration,
                        note,
                        json.dumps(row.extra),
                        row.model,
                        json.dumps(request_as_sent(row)),
                        row.line,
                    ),
                )
            )
        statements.append(
            ("INSERT OR REPLACE INTO meta VALUES (?, ?)", ("columns", json.dumps(extra_columns)))
        )
        self.meta["columns"] = json.dumps(list(extra_columns))
        self._write_now(statements)
        self.sheet_rows = list(rows)
        return warnings

    def begin_run(self, options: dict[str, Any]) -> int:
        """Open this invocation's line in the record (never the key in ``options``)."""
        with contextlib.closing(connect(self.path, readonly=True)) as conn:
            number = int(
                conn.execute("SELECT COALESCE(MAX(number), 0) + 1 FROM runs").fetchone()[0]
            )
        self._write_now(
            [(
                "INSERT INTO runs (number, started_at, options) VALUES (?, ?, ?)",
                (number, iso_utc(now_utc()), json.dumps(options, sort_keys=True, default=str)),
            )]
        )  # fmt: skip
        return number

    def end_run(self, number: int, *, sent: int, collected: int) -> None:
        """Close this invocation's line: when it ended, what it sent and collected."""
        self._write_now(
            [(
                "UPDATE runs SET ended_at = ?, sent = ?, collected = ? WHERE number = ?",
                (iso_utc(now_utc()), sent, collected, number),
            )]
        )  # fmt: skip

    def recover(self, *, resubmit_unknown: bool, retry_failed: bool) -> int:
        """Settle what a crash left half-done; reopen unknown or failed rows when asked.

        Returns how many rows were found with a create on the wire and no answer.
        """
        lost = 0
        statements = []
        for entry in self.entries.values():
            changed = entry.sending
            if entry.sending:  # the process died between sending a create and its answer
                entry.sending = False
                entry.status = Status.UNKNOWN
                entry.error = LOST_ANSWER
                lost += 1
            if (resubmit_unknown and entry.status is Status.UNKNOWN) or (
                retry_failed and entry.status is Status.FAILED
            ):
                entry.status = Status.PENDING
                entry.task_id = entry.video_url = entry.video_file = entry.finished_at = None
                entry.submitted_at = None
                entry.error = None
                changed = True
            if changed:
                statements.append(self._upsert(entry))
        if statements:
            self._write_now(statements)
        return lost

    # -- transitions during a run (each one durable before it returns) --------------------------

    async def _persist(self, *entries: TaskEntry) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._writer.submit([self._upsert(e) for e in entries], loop, future)
        self.changed.update(e.key for e in entries)
        await future

    @staticmethod
    def _upsert(entry: TaskEntry) -> tuple[str, Sequence[Any]]:
        return (
            f"INSERT OR REPLACE INTO tasks ({TASK_COLUMNS}) VALUES ({_PLACEHOLDERS})",
            entry.as_params(),
        )

    async def begin_create(self, key: str) -> None:
        """Say, durably, that a create for this row is about to be sent."""
        entry = self.entries[key]
        entry.sending = True
        entry.attempts += 1
        entry.error = None
        await self._persist(entry)

    async def create_accepted(self, key: str, task_id: str) -> None:
        """Record the provider's task id: the row is running and never sent again."""
        entry = self.entries[key]
        entry.sending = False
        entry.status = Status.RUNNING
        entry.task_id = task_id
        entry.submitted_at = now_utc()
        await self._persist(entry)

    async def create_settled(self, key: str, status: Status, error: str | None) -> None:
        """The create ended without a task: pending (retry later), failed or unknown."""
        entry = self.entries[key]
        entry.sending = False
        entry.status = status
        entry.error = error
        if status is Status.FAILED:
            entry.finished_at = now_utc()
        await self._persist(entry)

    async def settle_pending(self, keys: Iterable[str], error: str) -> None:
        """Give every still-pending row among ``keys`` the same reason, in one write."""
        touched = []
        for key in keys:
            entry = self.entries.get(key)
            if entry is not None and entry.status is Status.PENDING and not entry.sending:
                entry.error = error
                touched.append(entry)
        if touched:
            await self._persist(*touched)

    async def task_finished(
        self, key: str, status: Status, *, video_url: str | None = None, error: str | None = None
    ) -> None:
        """The provider says the task ended."""
        entry = self.entries[key]
        entry.status = status
        entry.video_url = video_url
        entry.error = error
        entry.finished_at = now_utc()
        await self._persist(entry)

    async def note(self, key: str, error: str | None, *, video_file: str | None = None) -> None:
        """Record a remark on a row (e.g. a download problem) or its downloaded video."""
        entry = self.entries[key]
        entry.error = error
        if video_file is not None:
            entry.video_file = video_file
        await self._persist(entry)

    # -- reading ---------------------------------------------------------------------------------

    def tally(self) -> tuple[int, int]:
        """(create requests sent, rows finished as succeeded or failed) over the run's life."""
        sent = sum(e.attempts for e in self.entries.values())
        done = sum(e.status in (Status.SUCCEEDED, Status.FAILED) for e in self.entries.values())
        return sent, done

    def committed_cost(self) -> float:
        """USD of every create that was or may have been accepted (running, done, unknown)."""
        return sum(e.cost for e in self.entries.values() if e.status in COMMITTED or e.sending)

    def records(self) -> list[RowRecord]:
        """The current sheet's rows with what the record knows of each, in sheet order."""
        return self.snapshot().records()

    def snapshot(self) -> Snapshot:
        """A copy of what the record knows now, safe to read from another thread."""
        entries = {key: copy.copy(entry) for key, entry in self.entries.items()}
        return Snapshot(self.run_dir, dict(self.meta), list(self.sheet_rows), entries,
                        dict(self._notes))  # fmt: skip
