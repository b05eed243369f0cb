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
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from batchwan.errors import StateError
from batchwan.models import CheckedRow, RowRecord, Status

STATE_FILE = "state.db"
SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
    key TEXT PRIMARY KEY,
    content_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    model TEXT NOT NULL,
    task_id TEXT,
    video_url TEXT,
    video_file TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    sending INTEGER NOT NULL DEFAULT 0,
    submitted_at TEXT,
    finished_at TEXT,
    cost REAL NOT NULL,
    resolution TEXT NOT NULL,
    duration INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sheet_rows (
    position INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    row_id TEXT NOT NULL,
    status TEXT NOT NULL,
    prompt TEXT NOT NULL,
    image TEXT NOT NULL,
    cost REAL NOT NULL,
    resolution TEXT NOT NULL,
    duration INTEGER NOT NULL,
    error TEXT,
    extra TEXT NOT NULL
);
"""

_TASK_COLUMNS = (
    "key, content_hash, status, model, task_id, video_url, video_file, error, attempts, "
    "sending, submitted_at, finished_at, cost, resolution, duration"
)

LOST_ANSWER = (
    "a create was sent but its answer was lost; the task may or may not exist at the provider "
    "(run with --resubmit-unknown to send it again)"
)


def now_utc() -> datetime:
    """The current time, timezone-aware UTC, to the second."""
    return datetime.now(UTC).replace(microsecond=0)


def iso_utc(value: datetime | None) -> str | None:
    """ISO 8601 with a Z, the one form the run folder's files use."""
    return value.isoformat().replace("+00:00", "Z") if value else None


def _parseiso_utc(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


@dataclass
class TaskEntry:
    """The durable state of one row key: what was sent, what came back."""

    key: str
    content_hash: str
    status: Status
    model: str
    cost: float
    resolution: str
    duration: int
    task_id: str | None = None
    video_url: str | None = None
    video_file: str | None = None
    error: str | None = None
    attempts: int = 0
    sending: bool = False
    submitted_at: datetime | None = None
    finished_at: datetime | None = None

    def as_params(self) -> tuple[Any, ...]:
        """The entry as one INSERT's parameters, in ``_TASK_COLUMNS`` order."""
        return (
            self.key,
            self.content_hash,
            self.status.value,
            self.model,
            self.task_id,
            self.video_url,
            self.video_file,
            self.error,
            self.attempts,
            int(self.sending),
            iso_utc(self.submitted_at),
            iso_utc(self.finished_at),
            self.cost,
            self.resolution,
            self.duration,
        )

    @classmethod
    def from_db(cls, row: sqlite3.Row) -> TaskEntry:
        """Rebuild an entry from its table row."""
        return cls(
            key=row["key"],
            content_hash=row["content_hash"],
            status=Status(row["status"]),
            model=row["model"],
            cost=row["cost"],
            resolution=row["resolution"],
            duration=row["duration"],
            task_id=row["task_id"],
            video_url=row["video_url"],
            video_file=row["video_file"],
            error=row["error"],
            attempts=row["attempts"],
            sending=bool(row["sending"]),
            submitted_at=_parseiso_utc(row["submitted_at"]),
            finished_at=_parseiso_utc(row["finished_at"]),
        )


@dataclass
class _Batch:
    """Writes waiting for the writer thread, with the futures to settle once they are durable."""

    statements: list[tuple[str, Sequence[Any]]] = field(default_factory=list)
    waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = field(
        default_factory=list
    )


class _Writer:
    """One thread that owns the write connection and commits queued changes in groups."""

    def __init__(self, path: Path) -> None:
        self._queue: queue.SimpleQueue[
            tuple[list[tuple[str, Sequence[Any]]], asyncio.AbstractEventLoop | None, Any] | None
        ] = queue.SimpleQueue()
        self._conn = _connect(path)
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
        if loop is None:  # a thread waiting on a threading.Event
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


def _connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    else:
        conn = sqlite3.connect(path, timeout=10, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before the caller goes on; that is the whole point.
        conn.execute("PRAGMA synchronous=FULL")
    conn.row_factory = sqlite3.Row
    return conn


class Ledger:
    """The run folder's record of every row key; one instance per run, one writer."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.path = run_dir / STATE_FILE
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            conn = _connect(self.path)
            conn.executescript(_SCHEMA)
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

    def close(self) -> None:
        """Flush and close the record."""
        self._writer.close()

    # -- start of a run (synchronous: nothing else is running yet) ------------------------------

    def _write_now(self, statements: list[tuple[str, Sequence[Any]]]) -> None:
        done = threading.Event()
        self._writer.submit(statements, None, done)
        done.wait()
        error = getattr(done, "error", None)
        if error is not None:
            raise StateError(f"{self.path}: could not write the run's record: {error}")

    def claim(self, sheet: Path, model: str) -> None:
        """Tie the run folder to its sheet; refuse a folder that belongs to another sheet."""
        owner = self.meta.get("sheet")
        sheet_text = str(sheet.resolve())
        if owner and owner != sheet_text:
            raise StateError(
                f"{self.run_dir} holds the run of {owner}, not {sheet_text}; "
                "choose another --out for this sheet"
            )
        stamp = iso_utc(now_utc()) or ""
        updates = {"sheet": sheet_text, "model": model, "run_started_at": stamp}
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
                    "INSERT INTO sheet_rows VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        row.position,
                        row.key,
                        row.row_id,
                        row.status.value,
                        str(row.request.get("prompt", "")),
                        _image_label(row),
                        cost,
                        row.resolution,
                        row.duration,
                        note,
                        json.dumps(row.extra),
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

    def recover(self, *, resubmit_unknown: bool, retry_failed: bool) -> int:
        """Settle what a crash left half-done; reopen unknown or failed rows when asked.

        Returns how many rows were found with a create on the wire and no answer.
        """
        lost = 0
        statements = []
        for entry in self.entries.values():
            if entry.sending:  # the process died between sending a create and its answer
                entry.sending = False
                entry.status = Status.UNKNOWN
                entry.error = LOST_ANSWER
                lost += 1
            reopen = (resubmit_unknown and entry.status is Status.UNKNOWN) or (
                retry_failed and entry.status is Status.FAILED
            )
            if reopen:
                entry.status = Status.PENDING
                entry.task_id = entry.video_url = entry.video_file = entry.finished_at = None
                entry.submitted_at = None
                entry.error = None
            if entry.sending is False and (reopen or entry.error == LOST_ANSWER):
                statements.append(self._upsert(entry))
        if statements:
            self._write_now(statements)
        return lost

    # -- transitions during a run (each one durable before it returns) --------------------------

    async def _persist(self, *entries: TaskEntry) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._writer.submit([self._upsert(e) for e in entries], loop, future)
        await future

    @staticmethod
    def _upsert(entry: TaskEntry) -> tuple[str, Sequence[Any]]:
        return (
            f"INSERT OR REPLACE INTO tasks ({_TASK_COLUMNS}) VALUES ({','.join('?' * 15)})",
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

    def committed_cost(self) -> float:
        """USD of every create that was or may have been accepted (running, done, unknown)."""
        spent = (Status.RUNNING, Status.SUCCEEDED, Status.UNKNOWN)
        return sum(e.cost for e in self.entries.values() if e.status in spent or e.sending)

    def records(self) -> list[RowRecord]:
        """The current sheet's rows with what the record knows of each, in sheet order."""
        return self.snapshot().records()

    def snapshot(self) -> Snapshot:
        """A copy of what the record knows now, safe to read from another thread."""
        entries = {key: copy.copy(entry) for key, entry in self.entries.items()}
        return Snapshot(self.run_dir, dict(self.meta), list(self.sheet_rows), entries,
                        dict(self._notes))  # fmt: skip


@dataclass(frozen=True)
class Snapshot:
    """The record at one instant: enough to write results without touching the live ledger."""

    run_dir: Path
    meta: dict[str, str]
    sheet_rows: list[CheckedRow]
    entries: dict[str, TaskEntry]
    notes: dict[int, str]

    def records(self) -> list[RowRecord]:
        """The sheet's rows with what the record knew of each, in sheet order."""
        return [
            _record(row, self.entries.get(row.key), self.notes.get(row.position))
            for row in self.sheet_rows
        ]


def _image_label(row: CheckedRow) -> str:
    if row.image_path is not None:
        return str(row.image_path)
    image = str(row.request.get("image", ""))
    if image.startswith("data:"):
        return f"{image[:40]}... ({len(image)} characters)"
    return image


def _record(row: CheckedRow, entry: TaskEntry | None, note: str | None = None) -> RowRecord:
    """One results row: the sheet's view of the row, with the record's view of its task."""
    if row.status is not Status.PENDING or entry is None:
        return RowRecord(
            position=row.position, key=row.key, row_id=row.row_id, status=row.status, cost=0.0,
            resolution=row.resolution, duration=row.duration,
            prompt=str(row.request.get("prompt", "")), image=_image_label(row), error=note,
            extra=row.extra,
        )  # fmt: skip
    return _merged(
        row.position, row.key, row.row_id, str(row.request.get("prompt", "")), _image_label(row),
        row.extra, entry, note,
    )  # fmt: skip


def _merged(
    position: int,
    key: str,
    row_id: str,
    prompt: str,
    image: str,
    extra: dict[str, str],
    entry: TaskEntry,
    note: str | None,
) -> RowRecord:
    """A valid row's record: what the ledger knows, with any remark from reading the sheet."""
    error = entry.error if not note else (f"{entry.error}; {note}" if entry.error else note)
    return RowRecord(
        position=position, key=key, row_id=row_id, status=entry.status, cost=entry.cost,
        resolution=entry.resolution, duration=entry.duration, prompt=prompt, image=image,
        task_id=entry.task_id, video_url=entry.video_url, video_file=entry.video_file,
        error=error, attempts=entry.attempts, submitted_at=entry.submitted_at,
        finished_at=entry.finished_at, extra=extra,
    )  # fmt: skip


def read_meta(run_dir: Path) -> dict[str, str]:
    """The run folder's metadata (sheet, model, start times), read-only."""
    with _open_readonly(run_dir) as conn:
        return dict(conn.execute("SELECT name, value FROM meta"))


def read_records(run_dir: Path) -> list[RowRecord]:
    """Every row of the last sheet read, with its record, in sheet order; read-only."""
    with _open_readonly(run_dir) as conn:
        entries = {r["key"]: TaskEntry.from_db(r) for r in conn.execute("SELECT * FROM tasks")}
        rows = conn.execute("SELECT * FROM sheet_rows ORDER BY position").fetchall()
    return list(_records_from_db(rows, entries))


def _records_from_db(
    rows: Iterable[sqlite3.Row], entries: dict[str, TaskEntry]
) -> Iterable[RowRecord]:
    for r in rows:
        status = Status(r["status"])
        base = RowRecord(
            position=r["position"],
            key=r["key"],
            row_id=r["row_id"],
            status=status,
            cost=r["cost"],
            resolution=r["resolution"],
            duration=r["duration"],
            prompt=r["prompt"],
            image=r["image"],
            error=r["error"],
            extra=json.loads(r["extra"]),
        )
        entry = entries.get(r["key"])
        if status is Status.PENDING and entry is not None:
            if entry.sending:
                entry = replace(entry, status=Status.UNKNOWN, error=entry.error or LOST_ANSWER)
            yield _merged(base.position, base.key, base.row_id, base.prompt, base.image,
                          base.extra, entry, r["error"])  # fmt: skip
        else:
            yield base


class _ReadOnly:
    """A read-only connection to a run folder's record, as a context manager."""

    def __init__(self, run_dir: Path) -> None:
        path = run_dir / STATE_FILE
        if not path.is_file():
            raise StateError(f"{run_dir} holds no batchwan run (no {STATE_FILE})")
        try:
            self.conn = _connect(path, readonly=True)
            self.conn.execute("SELECT 1 FROM sheet_rows LIMIT 1")
        except sqlite3.Error as exc:
            raise StateError(f"{path}: the run's record cannot be read: {exc}") from exc

    def __enter__(self) -> sqlite3.Connection:
        return self.conn

    def __exit__(self, *exc_info: object) -> None:
        self.conn.close()


def _open_readonly(run_dir: Path) -> _ReadOnly:
    return _ReadOnly(run_dir)
