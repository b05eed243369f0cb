"""What the run's record is made of: the SQLite schema, one entry per row key, and times.

``ledger`` writes these and ``records`` reads them; both build on this module.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from batchwan.values import COMMITTED, RunLine, Status

STATE_FILE = "state.db"
SCHEMA_VERSION = "3"

SCHEMA = """
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
    duration INTEGER NOT NULL,
    prior_cost REAL NOT NULL DEFAULT 0
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
    extra TEXT NOT NULL,
    model TEXT NOT NULL DEFAULT '',
    request TEXT NOT NULL DEFAULT '{}',
    line INTEGER
);
CREATE TABLE IF NOT EXISTS runs (
    number INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    sent INTEGER NOT NULL DEFAULT 0,
    collected INTEGER NOT NULL DEFAULT 0,
    options TEXT NOT NULL DEFAULT '{}'
);
"""

#: Columns added to ``sheet_rows`` after the first version, with their definitions, so an older
#: record is upgraded in place when a run opens it.
ADDED_SHEET_COLUMNS = {
    "model": "TEXT NOT NULL DEFAULT ''",
    "request": "TEXT NOT NULL DEFAULT '{}'",
    "line": "INTEGER",
}


#: Columns added to ``tasks`` since: ``prior_cost`` is what earlier attempts of a row that may
#: have been billed cost (an ``unknown`` row sent again), so the budget never forgets them.
ADDED_TASK_COLUMNS = {"prior_cost": "REAL NOT NULL DEFAULT 0"}


def migrate(conn: sqlite3.Connection) -> None:
    """Create the tables, and add the columns an older record lacks."""
    conn.executescript(SCHEMA)
    for table, added in (("sheet_rows", ADDED_SHEET_COLUMNS), ("tasks", ADDED_TASK_COLUMNS)):
        have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
        for name, definition in added.items():
            if name not in have:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {definition}")
    conn.commit()


TASK_COLUMNS = (
    "key, content_hash, status, model, task_id, video_url, video_file, error, attempts, "
    "sending, submitted_at, finished_at, cost, resolution, duration, prior_cost"
)

_TASK_NAMES = tuple(name.strip() for name in TASK_COLUMNS.split(","))

#: Status by its stored text (a dict lookup is cheaper than calling the enum, per row).
_STATUSES = {status.value: status for status in Status}

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


# Times are kept to the second: a big record holds a few hundred distinct ones, each parsed
# once (a datetime is immutable, so rows may share one).
@functools.lru_cache(maxsize=1 << 12)
def parse_iso(value: str | None) -> datetime | None:
    """A time as the record keeps it (ISO 8601 with a Z), or None."""
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
    prior_cost: float = 0.0

    @property
    def committed(self) -> float:
        """USD this row may have cost: earlier possibly-billed attempts, and the current one
        while it is being sent, running, done or unknown (failed tasks are not billed)."""
        now = self.cost if self.sending or self.status in COMMITTED else 0.0
        return self.prior_cost + now

    def as_params(self) -> tuple[Any, ...]:
        """The entry as one INSERT's parameters, in ``TASK_COLUMNS`` order."""
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
            self.prior_cost,
        )

    @classmethod
    def from_params(cls, values: tuple[Any, ...]) -> TaskEntry:
        """Rebuild an entry from its table row read as ``SELECT {TASK_COLUMNS}`` (the order of
        ``as_params``): by position, far cheaper than by name for a big record."""
        (
            key, content_hash, status, model, task_id, video_url, video_file, error, attempts,
            sending, submitted_at, finished_at, cost, resolution, duration, prior_cost,
        ) = values  # fmt: skip
        return cls(
            key, content_hash, _STATUSES[status], model, cost, resolution, duration, task_id,
            video_url, video_file, error, attempts, bool(sending),
            parse_iso(submitted_at), parse_iso(finished_at), prior_cost,
        )  # fmt: skip

    @classmethod
    def from_db(cls, row: sqlite3.Row | Mapping[str, Any]) -> TaskEntry:
        """Rebuild an entry from its table row, read by column name."""
        return cls.from_params(tuple(row[name] for name in _TASK_NAMES))


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """Open state.db: read-only, or for writing with WAL and every commit synced to disk."""
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    else:
        conn = sqlite3.connect(path, timeout=10, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before the caller goes on; that is the whole point.
        conn.execute("PRAGMA synchronous=FULL")
    conn.row_factory = sqlite3.Row
    return conn


def run_line(row: sqlite3.Row | Mapping[str, Any]) -> RunLine:
    """One run line from its stored row (SQLite or PostgreSQL, the same columns)."""
    return RunLine(
        number=row["number"],
        started_at=parse_iso(row["started_at"]) or now_utc(),
        ended_at=parse_iso(row["ended_at"]),
        sent=row["sent"],
        collected=row["collected"],
    )
