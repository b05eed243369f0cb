"""The run's record in the run folder: ``state.db`` (SQLite, WAL), one runner at a time.

Every transition is committed before the step that depends on it: a create is marked as being
sent before it goes out, and a task id is committed before anything else happens to the row. So a
crash at any instant leaves either a row with a task id (polled, never sent again) or a row whose
create may have gone out unanswered (``unknown``, sent again only when asked).

The in-memory view of each row changes only once the write it reflects has been committed;
changes queued but not yet durable are kept apart, and the budget counts them already, so two
workers can never both fit under the ceiling with the same dollar.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from batchwan.collector import collector_paused
from batchwan.errors import StateError
from batchwan.pool.limits import CreateWindow, InFlight
from batchwan.store.base import Claim
from batchwan.store.records import Snapshot, recorded_keys
from batchwan.store.schema import (
    LOST_ANSWER,
    STATE_FILE,
    TASK_COLUMNS,
    TaskEntry,
    connect,
    iso_utc,
    migrate,
    now_utc,
)
from batchwan.store.sheetmatch import claim_updates, match_sheet
from batchwan.store.sheetsync import SHEET_COLUMNS, plan_sync
from batchwan.store.writer import Batch, Statement, Writer
from batchwan.values import CheckedRow, RowRecord, Status

log = logging.getLogger(__name__)

_PLACEHOLDERS = ",".join("?" * len(TASK_COLUMNS.split(",")))
_SHEET_ROW_SQL = "INSERT OR REPLACE INTO sheet_rows VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"

#: Files a run leaves in its folder; with these and no state.db the record was lost.
PAST_RUN_SIGNS = ("results.csv", "summary.json", "report.html", "run.log", "videos")


def refuse_lost_record(run_dir: Path, *, new_record: bool, store: str | None = None) -> None:
    """A folder that shows a past run but has no state.db lost its record: refuse to start over.

    Starting a fresh record there would send every row again, also those already billed. A run
    kept in a shared store (``store``) has no state.db to lose.
    """
    if not store and (run_dir / "store.json").is_file():
        from batchwan.store.pgschema import read_pointer

        shared = (read_pointer(run_dir) or {}).get("store")
        raise StateError(
            f"{run_dir} keeps its record in the shared store {shared}; run with --store {shared} "
            "(or set BATCHWAN_STORE), or choose another --out"
        )
    if new_record or store or (run_dir / STATE_FILE).exists():
        return
    signs = [name for name in PAST_RUN_SIGNS if (run_dir / name).exists()]
    if signs:
        raise StateError(
            f"{run_dir} shows a past run ({', '.join(signs)}) but its record ({STATE_FILE}) is "
            "missing: starting over would send every row again. Put state.db back, or run with "
            "--new-record to start a new record there (rows already sent will be sent again)"
        )


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


# An upsert changes the row in place; INSERT OR REPLACE would delete and insert it again (and
# its key's index entry), about twice the work for each transition of a run.
_UPSERT_SQL = (
    f"INSERT INTO tasks ({TASK_COLUMNS}) VALUES ({_PLACEHOLDERS}) ON CONFLICT(key) DO UPDATE SET "
    + ", ".join(
        f"{name} = excluded.{name}" for name in TASK_COLUMNS.replace(" ", "").split(",")[1:]
    )
)


def _upsert(entry: TaskEntry) -> Statement:
    return (_UPSERT_SQL, entry.as_params())


class SqliteStore:
    """The run folder's record of every row key; one instance per run, one writer thread."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.path = run_dir / STATE_FILE
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            _refuse_foreign(self.path)
            conn = connect(self.path)
            migrate(conn)
            conn.row_factory = None  # plain tuples: a big record is read row by row here
            from_params = TaskEntry.from_params
            with collector_paused():  # one entry per row key, and no cycles among them
                self._entries: dict[str, TaskEntry] = {
                    values[0]: from_params(values)
                    for values in conn.execute(f"SELECT {TASK_COLUMNS} FROM tasks")
                }
            self.meta: dict[str, str] = dict(conn.execute("SELECT name, value FROM meta"))
            conn.close()
        except (sqlite3.Error, OSError) as exc:
            raise StateError(f"{self.path}: cannot open the run's record: {exc}") from exc
        self._writer = Writer(self.path)
        self._queued: dict[str, TaskEntry] = {}  # written, not yet committed: the newest view
        self._total = sum(e.committed for e in self._entries.values())
        self._version = 0  # bumped at every commit; the records are built once per version
        self._changed: set[str] = set()  # keys committed since the last take_changed()
        self._records: tuple[int, list[RowRecord]] | None = None
        self.sheet_rows: list[CheckedRow] = []
        self._notes: dict[int, str] = {}  # sheet position -> remark made when the sheet was read

    @property
    def writer(self) -> Writer:
        """The thread that writes state.db (it can write another local file too)."""
        return self._writer

    @property
    def writes(self) -> int:
        """Rows changed in state.db by this store so far (what a rerun costs the disk)."""
        return self._writer.changes

    def close(self) -> None:
        """Flush the record, fold its WAL into state.db, and close it."""
        self._writer.close()

    # -- the start of a run (synchronous: nothing else is running yet) --------------------------

    def claim(
        self,
        sheet: Path,
        model: str,
        max_cost: float | None = None,
        keys: Sequence[str] | None = None,
    ) -> None:
        """Tie the run folder to its sheet, recognised by its rows; refuse another sheet."""
        sheet_text = str(sheet.resolve())
        owner = self.meta.get("sheet")
        recorded: list[str] = []
        if owner and owner != sheet_text:  # the same sheet again needs none of its keys
            with contextlib.closing(connect(self.path, readonly=True)) as conn:
                recorded = recorded_keys(conn)
        found = match_sheet(str(self.run_dir), owner, sheet_text, recorded,
                            keys if keys is not None else recorded)  # fmt: skip
        if found.warning:
            log.warning("%s", found.warning)
        updates = claim_updates(self.meta, sheet_text, model, max_cost)
        self._writer.write_now(
            [("INSERT OR REPLACE INTO meta VALUES (?, ?)", kv) for kv in updates.items()]
        )
        self.meta.update(updates)

    def _changed_sheet_rows(
        self, values: Sequence[tuple[Any, ...]]
    ) -> tuple[list[tuple[Any, ...]], int]:
        """(the rows of ``values`` that differ from the recorded ones, how many are recorded).

        Both are in position order (the table's key): walked side by side, not looked up.
        """
        changed: list[tuple[Any, ...]] = []
        with contextlib.closing(connect(self.path, readonly=True)) as conn:
            conn.row_factory = None  # plain tuples, compared as they are with the new values
            query = f"SELECT {', '.join(SHEET_COLUMNS)} FROM sheet_rows ORDER BY position"
            recorded = conn.execute(query)
            count = 0
            old = next(recorded, None)
            for new in values:
                while old is not None and old[0] < new[0]:
                    old, count = next(recorded, None), count + 1
                if old != new:
                    changed.append(new)
            count += sum(1 for _ in recorded) + (old is not None)
        return changed, count

    def sync_sheet(
        self, rows: Sequence[CheckedRow], costs: Sequence[float], extra_columns: Sequence[str]
    ) -> list[str]:
        """Record the sheet as read now, writing only the rows that changed since last time.

        Returns warnings for rows whose content changed under an id that was already sent.
        """
        with collector_paused():  # every row's stored values, and no cycles among them
            plan = plan_sync(rows, costs, self._entries, self.meta.get("model", ""))
            changed, recorded = self._changed_sheet_rows(plan.values)
        statements: list[Statement] = [_upsert(e) for e in plan.entries.values()]
        statements += [(_SHEET_ROW_SQL, v) for v in changed]
        if recorded > len(rows):  # the sheet got shorter
            statements.append(("DELETE FROM sheet_rows WHERE position > ?", (len(rows),)))
        columns = json.dumps(list(extra_columns))
        if self.meta.get("columns") != columns:
            statements.append(("INSERT OR REPLACE INTO meta VALUES (?, ?)", ("columns", columns)))
        if statements:
            self._writer.write_now(statements)
        self._entries.update(plan.entries)
        self._recount()
        self.meta["columns"] = columns
        self.sheet_rows = list(rows)
        self._notes = plan.notes
        self._version += 1
        return plan.warnings

    def set_meta(self, name: str, value: str) -> None:
        """Keep one setting of the run in the record's meta (e.g. its --group-by)."""
        self._writer.write_now([("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, value))])
        self.meta[name] = value

    def begin_run(self, options: dict[str, Any]) -> int:
        """Open this invocation's line in the record (never the key in ``options``)."""
        with contextlib.closing(connect(self.path, readonly=True)) as conn:
            number = int(
                conn.execute("SELECT COALESCE(MAX(number), 0) + 1 FROM runs").fetchone()[0]
            )
        self._writer.write_now(
            [(
                "INSERT INTO runs (number, started_at, options) VALUES (?, ?, ?)",
                (number, iso_utc(now_utc()), json.dumps(options, sort_keys=True, default=str)),
            )]
        )  # fmt: skip
        return number

    def end_run(self, number: int, *, sent: int, collected: int) -> None:
        """Close this invocation's line: when it ended, what it sent and collected."""
        self._writer.write_now(
            [(
                "UPDATE runs SET ended_at = ?, sent = ?, collected = ? WHERE number = ?",
                (iso_utc(now_utc()), sent, collected, number),
            )]
        )  # fmt: skip

    def recover(self, *, resubmit_unknown: bool, retry_failed: bool) -> int:
        """Settle what a crash left half-done; reopen unknown or failed rows when asked.

        A row sent again after ``unknown`` keeps the cost of its first attempt counted: that
        attempt may have been billed. Returns how many rows were caught mid-send.
        """
        lost = 0
        changed: dict[str, TaskEntry] = {}
        for key, old in self._entries.items():
            entry = old
            if entry.sending:  # the process died between sending a create and its answer
                entry = replace(entry, sending=False, status=Status.UNKNOWN, error=LOST_ANSWER)
                lost += 1
            reopen_unknown = resubmit_unknown and entry.status is Status.UNKNOWN
            if reopen_unknown or (retry_failed and entry.status is Status.FAILED):
                entry = replace(
                    entry, status=Status.PENDING, task_id=None, video_url=None, video_file=None,
                    finished_at=None, submitted_at=None, error=None,
                    prior_cost=entry.prior_cost + (entry.cost if reopen_unknown else 0.0),
                )  # fmt: skip
            if entry is not old:
                changed[key] = entry
        if changed:
            self._writer.write_now([_upsert(e) for e in changed.values()], critical=True)
            self._entries.update(changed)
            self._recount()
            self._version += 1
        return lost

    def limits(self, concurrency: int, rate: float) -> tuple[InFlight, CreateWindow]:
        """One runner per folder: the limits are counted in this process."""
        return InFlight(concurrency), CreateWindow(rate)

    def more_to_follow(self, *, downloads: bool = False) -> bool | None:
        """One runner per folder: nothing is ever left to another."""
        return False

    # -- transitions during a run (each one durable before it returns) --------------------------

    def _latest(self, key: str) -> TaskEntry:
        return self._queued.get(key) or self._entries[key]

    def _recount(self) -> None:
        self._total = sum(self._latest(k).committed for k in self._entries)

    async def _apply(self, *entries: TaskEntry, critical: bool = False) -> None:
        """Write new versions of entries; the committed view takes them once durable."""
        for entry in entries:
            self._total += entry.committed - self._latest(entry.key).committed
            self._queued[entry.key] = entry
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._writer.submit(Batch([_upsert(e) for e in entries], loop, future, critical))
        try:
            await future
        except BaseException:
            for entry in entries:
                if self._queued.get(entry.key) is entry:
                    del self._queued[entry.key]
            self._recount()
            raise
        for entry in entries:
            self._entries[entry.key] = entry
            self._changed.add(entry.key)
            if self._queued.get(entry.key) is entry:
                del self._queued[entry.key]
        self._version += 1

    async def begin_create(self, key: str, *, max_cost: float | None = None) -> Claim:
        """Say, durably, that a create for this row is about to be sent; the budget decides.

        The check and the count happen before the first await, so no other worker slips in.
        """
        entry = self._latest(key)
        if entry.status is not Status.PENDING or entry.sending:
            return Claim.TAKEN
        if max_cost is not None and self._total + entry.cost > max_cost + 1e-9:
            return Claim.BUDGET
        await self._apply(
            replace(entry, sending=True, attempts=entry.attempts + 1, error=None), critical=True
        )
        return Claim.SENDING

    async def create_accepted(self, key: str, task_id: str) -> None:
        """Record the provider's task id: the row is running and never sent again."""
        entry = replace(self._latest(key), sending=False, status=Status.RUNNING, task_id=task_id,
                        submitted_at=now_utc())  # fmt: skip
        await self._apply(entry, critical=True)

    async def create_settled(self, key: str, status: Status, error: str | None) -> None:
        """The create ended without a task: pending (retry later), failed or unknown."""
        finished = now_utc() if status is Status.FAILED else self._latest(key).finished_at
        await self._apply(replace(self._latest(key), sending=False, status=status, error=error,
                                  finished_at=finished))  # fmt: skip

    async def settle_pending(self, keys: Iterable[str], error: str) -> None:
        """Give every still-pending row among ``keys`` the same reason, in one write."""
        touched = []
        for key in keys:
            if key not in self._entries:
                continue
            entry = self._latest(key)
            if entry.status is Status.PENDING and not entry.sending:
                touched.append(replace(entry, error=error))
        if touched:
            await self._apply(*touched)

    async def task_finished(
        self, key: str, status: Status, *, video_url: str | None = None, error: str | None = None
    ) -> None:
        """The provider says the task ended."""
        await self._apply(replace(self._latest(key), status=status, video_url=video_url,
                                  error=error, finished_at=now_utc()))  # fmt: skip

    async def note(self, key: str, error: str | None, *, video_file: str | None = None) -> None:
        """Record a remark on a row (e.g. a download problem) or its downloaded video."""
        entry = self._latest(key)
        await self._apply(replace(entry, error=error, video_file=video_file or entry.video_file))

    # -- reading ---------------------------------------------------------------------------------

    def entry(self, key: str) -> TaskEntry:
        """A copy of the newest view of one row key."""
        return copy.copy(self._latest(key))

    def status(self, key: str) -> Status:
        """The newest status of one row key, without copying its entry."""
        return self._latest(key).status

    def tasks_to_follow(self, *, downloads: bool = True) -> list[TaskEntry]:
        """Every row running (or succeeded, with ``downloads``); the runner polls or downloads
        what is due. A rerun that downloads nothing copies none of its finished rows."""
        follow = (Status.RUNNING, Status.SUCCEEDED) if downloads else (Status.RUNNING,)
        return [copy.copy(e) for e in self._entries.values() if e.status in follow]

    def video_files(self) -> set[str]:
        """Every video file name some row of the run has been given (never given twice)."""
        return {e.video_file for e in self._entries.values() if e.video_file}

    def tally(self) -> tuple[int, int]:
        """(create requests sent, rows finished as succeeded or failed) over the run's life."""
        entries = self._entries.values()
        sent = sum(e.attempts for e in entries)
        done = sum(e.status in (Status.SUCCEEDED, Status.FAILED) for e in entries)
        return sent, done

    def committed_cost(self) -> float:
        """USD of every create that was or may have been billed (earlier attempts too)."""
        return self._total

    def records(self) -> list[RowRecord]:
        """The current sheet's rows with what the record knows of each, built once per change."""
        if self._records is None or self._records[0] != self._version:
            self._records = (self._version, self.snapshot().records())
        return self._records[1]

    def take_changed(self) -> set[str] | None:
        """Row keys committed since the last call (during the run, by this store only)."""
        changed, self._changed = self._changed, set()
        return changed

    def snapshot(self) -> Snapshot:
        """What the record has committed now, safe to read from another thread.

        The entries are shared, not copied: the store replaces an entry, never changes one.
        """
        return Snapshot(self.run_dir, dict(self.meta), list(self.sheet_rows),
                        dict(self._entries), dict(self._notes))  # fmt: skip
