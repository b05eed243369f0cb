"""The run's record as people read it: one RowRecord per sheet row, live or from state.db.

``status`` and ``report`` read a run folder through here, read-only, also while a run writes.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from batchwan.collector import collector_paused
from batchwan.errors import StateError
from batchwan.store.runlock import run_is_live
from batchwan.store.schema import (
    LOST_ANSWER,
    STATE_FILE,
    TaskEntry,
    connect,
    run_line,
)
from batchwan.store.sheetmatch import match_sheet
from batchwan.values import CheckedRow, RowRecord, RunLine, Status


@dataclass(frozen=True)
class Snapshot:
    """The record at one instant: enough to write results without touching the live ledger."""

    run_dir: Path
    meta: dict[str, str]
    sheet_rows: list[CheckedRow]
    entries: dict[str, TaskEntry]
    notes: dict[int, str]

    def committed_cost(self) -> float:
        """USD of every create that was or may have been billed, as the store counts it."""
        return sum(entry.committed for entry in self.entries.values())

    def records(self) -> list[RowRecord]:
        """The sheet's rows with what the record knew of each, in sheet order."""
        entries, notes = self.entries, self.notes
        with collector_paused():  # one record per row, and no cycles among them
            return [
                _record(row, entries.get(row.key), notes.get(row.position))
                for row in self.sheet_rows
            ]


def image_label(row: CheckedRow) -> str:
    """What the record shows for a row's image: its path, its URL, or a shortened data: URI."""
    if row.image_path is not None:
        return str(row.image_path)
    image = str(row.request.get("image", ""))
    if image.startswith("data:"):
        return f"{image[:40]}... ({len(image)} characters)"
    return image


def request_as_sent(row: CheckedRow, image: str | None = None) -> dict[str, Any]:
    """The row's request for people to read: every field sent, the image as the sheet gave it.

    ``image`` is the row's ``image_label`` when the caller has it already.
    """
    request = dict(row.request)
    if "image" in request:
        request["image"] = image_label(row) if image is None else image
    last = request.get("last_frame")
    if row.last_frame_path is not None:  # a last frame is labelled like the first
        request["last_frame"] = str(row.last_frame_path)
    elif isinstance(last, str) and last.startswith("data:"):
        request["last_frame"] = f"{last[:40]}... ({len(last)} characters)"
    return request


def _record(row: CheckedRow, entry: TaskEntry | None, note: str | None = None) -> RowRecord:
    """One results row: the sheet's view of the row, with the record's view of its task."""
    # Each label made once: this runs for every row of a big sheet.
    image = image_label(row)
    request = request_as_sent(row, image)
    prompt = str(row.request.get("prompt", ""))
    if row.status is not Status.PENDING or entry is None:
        return RowRecord(
            position=row.position, key=row.key, row_id=row.row_id, status=row.status, cost=0.0,
            resolution=row.resolution, duration=row.duration, prompt=prompt, image=image,
            error=note, extra=row.extra, model=row.model, request=request, line=row.line,
        )  # fmt: skip
    return _merged(
        row.position, row.key, row.row_id, prompt, image, row.extra, entry, note,
        model=row.model, request=request, line=row.line,
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
    *,
    model: str,
    request: dict[str, Any],
    line: int | None,
) -> RowRecord:
    """A valid row's record: what the ledger knows, with any remark from reading the sheet."""
    error = entry.error if not note else (f"{entry.error}; {note}" if entry.error else note)
    # Built in one go (not built, then replaced): this runs for every row of a big sheet.
    return RowRecord(
        position=position, key=key, row_id=row_id, status=entry.status, cost=entry.cost,
        resolution=entry.resolution, duration=entry.duration, prompt=prompt, image=image,
        task_id=entry.task_id, video_url=entry.video_url, video_file=entry.video_file,
        error=error, attempts=entry.attempts, submitted_at=entry.submitted_at,
        finished_at=entry.finished_at, extra=extra, model=model, request=request, line=line,
    )  # fmt: skip


def _shared(run_dir: Path) -> tuple[str, str] | None:
    """(store URL, run name) when the run folder's record is in a shared store."""
    if not (run_dir / "store.json").is_file():
        return None
    from batchwan.store.pgschema import read_pointer

    pointer = read_pointer(run_dir) or {}
    return str(pointer["store"]), str(pointer["run"])


def has_record(run_dir: Path) -> bool:
    """Whether the run folder has a record to read (its state.db, or a shared store's)."""
    return (run_dir / STATE_FILE).is_file() or _shared(run_dir) is not None


def read_meta(run_dir: Path) -> dict[str, str]:
    """The run folder's metadata (sheet, model, start times), read-only."""
    if shared := _shared(run_dir):
        from batchwan.store import pgread

        return pgread.read_meta(*shared)
    with _ReadOnly(run_dir) as conn:
        return dict(conn.execute("SELECT name, value FROM meta"))


#: What a reader shows for a row whose create is on the wire while its run is alive.
BEING_SENT = "the create is being sent now"

#: A row's status as readers show it, in SQL over ``sheet_rows s LEFT JOIN tasks t``; the one
#: parameter is what a row being sent shows (running while its run is alive, else unknown).
_SHOWN = (
    "CASE WHEN s.status != 'pending' OR t.key IS NULL THEN s.status "
    "WHEN t.sending = 1 THEN ? ELSE t.status END"
)


def read_records(run_dir: Path, statuses: Collection[Status] | None = None) -> list[RowRecord]:
    """Every row of the last sheet read (or those in ``statuses``), in sheet order; read-only.

    A row caught mid-send is ``running`` while its run is alive (the create is on the wire),
    and ``unknown`` once that run is gone (its answer was lost).
    """
    if shared := _shared(run_dir):
        from batchwan.store import pgread

        return pgread.read_records(*shared, statuses)
    live = run_is_live(run_dir)
    with _ReadOnly(run_dir) as conn:
        if statuses is None:
            tasks = conn.execute("SELECT * FROM tasks")
            rows = conn.execute("SELECT * FROM sheet_rows ORDER BY position").fetchall()
        else:  # only the rows asked for are read and built: status lists few of 100,000
            wanted = sorted(s.value for s in statuses)
            shown = f"({_SHOWN}) IN ({','.join('?' * len(wanted))})"
            sending = Status.RUNNING.value if live else Status.UNKNOWN.value
            params = (sending, *wanted)
            rows = conn.execute(
                f"SELECT s.* FROM sheet_rows s LEFT JOIN tasks t ON t.key = s.key "
                f"WHERE {shown} ORDER BY s.position",
                params,
            ).fetchall()
            tasks = conn.execute(
                f"SELECT t.* FROM sheet_rows s JOIN tasks t ON t.key = s.key WHERE {shown}",
                params,
            )
        entries = {r["key"]: TaskEntry.from_db(r) for r in tasks}
    return list(records_from_rows(rows, entries, live=live))


def read_sent_keys(run_dir: Path) -> list[str]:
    """Keys of the rows of the last sheet read that this folder has sent (tried to create, or
    holds a task of); read-only, one query, no record built."""
    if _shared(run_dir):
        return [r.key for r in read_records(run_dir) if r.attempts or r.task_id]
    with _ReadOnly(run_dir) as conn:
        # No DISTINCT: SQLite sorts it in a temporary file (megabytes written for a read);
        # a pending key is on one row of the sheet only (its repeats are duplicates).
        return [
            key
            for (key,) in conn.execute(
                "SELECT s.key FROM sheet_rows s JOIN tasks t ON t.key = s.key "
                "WHERE s.status = 'pending' AND (t.attempts > 0 OR t.task_id IS NOT NULL)"
            )
        ]


def count_statuses(run_dir: Path) -> dict[Status, int]:
    """How many rows of the last sheet read have each status, counted by SQL; read-only."""
    if _shared(run_dir):
        return dict(Counter(r.status for r in read_records(run_dir)))
    live = run_is_live(run_dir)
    query = f"""
        SELECT {_SHOWN} AS shown, COUNT(*)
        FROM sheet_rows s LEFT JOIN tasks t ON t.key = s.key
        GROUP BY shown
    """
    sending = Status.RUNNING.value if live else Status.UNKNOWN.value
    with _ReadOnly(run_dir) as conn:
        return {Status(name): n for name, n in conn.execute(query, (sending,))}


def records_from_rows(
    rows: Iterable[sqlite3.Row | Mapping[str, Any]], entries: dict[str, TaskEntry], *, live: bool
) -> Iterable[RowRecord]:
    """Records from the stored sheet rows and entries; ``live``: a run is sending now."""
    for r in rows:
        status = Status(r["status"])
        entry = entries.get(r["key"])
        if status is Status.PENDING and entry is not None:
            if entry.sending and live:
                entry = replace(entry, status=Status.RUNNING, error=BEING_SENT)
            elif entry.sending:
                entry = replace(entry, status=Status.UNKNOWN, error=entry.error or LOST_ANSWER)
            yield _merged(r["position"], r["key"], r["row_id"], r["prompt"], r["image"],
                          json.loads(r["extra"]), entry, r["error"], model=r["model"],
                          request=json.loads(r["request"]), line=r["line"])  # fmt: skip
            continue
        yield RowRecord(
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
            model=r["model"],
            request=json.loads(r["request"]),
            line=r["line"],
        )


def read_committed_cost(run_dir: Path) -> float:
    """USD of every create that was or may have been billed, as the running store counts it."""
    if shared := _shared(run_dir):
        from batchwan.store import pgread

        return pgread.committed_cost(*shared)
    with _ReadOnly(run_dir) as conn:
        entries = [TaskEntry.from_db(r) for r in conn.execute("SELECT * FROM tasks")]
    return sum(e.committed for e in entries)


def check_sheet(run_dir: Path, sheet: Path, keys: Collection[str]) -> str | None:
    """The sheet check `run` makes, read-only: a warning for a moved sheet, StateError for
    another sheet, None when the record was made from this very file."""
    if shared := _shared(run_dir):
        from batchwan.store import pgread

        owner = pgread.read_meta(*shared).get("sheet")
        recorded = pgread.recorded_keys(*shared)
        # Raises for another sheet; a path of its own on each machine is no news.
        match_sheet(f"shared run {shared[1]!r}", owner, str(sheet.resolve()), recorded, keys)
        return None
    with _ReadOnly(run_dir) as conn:
        owner = dict(conn.execute("SELECT name, value FROM meta")).get("sheet")
        recorded = recorded_keys(conn)
    return match_sheet(str(run_dir), owner, str(sheet.resolve()), recorded, keys).warning


def recorded_keys(conn: sqlite3.Connection) -> list[str]:
    """The distinct row keys of the sheet last recorded, in sheet order.

    Made distinct here, not by SQL: SELECT DISTINCT over 100,000 keys sorts them in a temporary
    file, megabytes written for a read.
    """
    return list(dict.fromkeys(k for (k,) in conn.execute("SELECT key FROM sheet_rows")))


def read_runs(run_dir: Path) -> list[RunLine]:
    """Every invocation of `run` on this folder, oldest first; read-only."""
    if shared := _shared(run_dir):
        from batchwan.store import pgread

        return pgread.read_runs(*shared)
    with _ReadOnly(run_dir) as conn:
        rows = conn.execute("SELECT * FROM runs ORDER BY number").fetchall()
    return [run_line(r) for r in rows]


class _ReadOnly:
    """A read-only connection to a run folder's record, as a context manager."""

    def __init__(self, run_dir: Path) -> None:
        path = run_dir / STATE_FILE
        if not path.is_file():
            raise StateError(f"{run_dir} holds no batchwan run (no {STATE_FILE})")
        conn: sqlite3.Connection | None = None
        try:
            conn = connect(path, readonly=True)
            conn.execute("SELECT 1 FROM sheet_rows LIMIT 1")
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            raise StateError(f"{path}: the run's record cannot be read: {exc}") from exc
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        return self.conn

    def __exit__(self, *exc_info: object) -> None:
        self.conn.close()
