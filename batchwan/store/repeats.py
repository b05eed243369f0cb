"""Never the same generation twice by accident, across run folders on this machine.

Every create sent to a provider account is written here, in two steps like the run's own
record: "about to send", durable before the create goes out, then its task id once accepted
(task ids are written a batch at a time and at the end of the run: only the send must be
durable first). So a run killed between the provider's answer and the second write still
counts as sent. A row of another run folder whose request (its content hash: prompt, image
bytes, settings, ``take``) is already here is held back as ``duplicate``, saying where the
earlier one is, unless ``--allow-repeat``.

The index is per provider and account: the base URL and a hash of the key (never the key). It
lives in ``$XDG_STATE_HOME/batchwan/sent.db`` (default ``~/.local/state/batchwan/``), SQLite with
WAL and ``synchronous=FULL``, written in group commits by the run record's own writer thread
(see ``store.writer``), so the workers of a run share its fsyncs. Simulated runs never enter it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from batchwan.errors import StateError
from batchwan.store.schema import iso_utc, now_utc
from batchwan.store.writer import Batch, SideFile, Statement, Writer
from batchwan.values import CheckedRow, RowIssue, Status

log = logging.getLogger(__name__)

INDEX_FILE = "sent.db"
#: Task ids written to the index together.
ACCEPTED_BATCH = 64
_ACCEPTED_SQL = (
    "UPDATE sent SET task_id = ? WHERE base_url = ? AND account = ? AND content_hash = ? "
    "AND run_dir = ?"
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sent (
    base_url TEXT NOT NULL,
    account TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    run_dir TEXT NOT NULL,
    row_key TEXT NOT NULL,
    position INTEGER NOT NULL,
    task_id TEXT,
    sent_at TEXT NOT NULL,
    PRIMARY KEY (base_url, account, content_hash, run_dir)
);
"""


def state_dir() -> Path:
    """batchwan's folder in the user's state directory (XDG_STATE_HOME)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "batchwan"


def account_of(api_key: str) -> str:
    """A stable name for the account behind a key, from which the key cannot be recovered."""
    return hashlib.sha256(f"batchwan-account:{api_key}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class EarlierSend:
    """Where the same request was sent before."""

    run_dir: str
    position: int
    row_key: str
    task_id: str | None

    def describe(self, videos: dict[str, str | None]) -> str:
        """Where the earlier one is; ``videos``: that run folder's video file by row key."""
        where = f"run folder {self.run_dir}, row {self.position}"
        if self.task_id is None:
            return f"{where} (a create was sent; its answer was not recorded there)"
        video = videos.get(self.row_key)
        shown = f", video {Path(self.run_dir) / video}" if video else ""
        return f"{where}, task {self.task_id}{shown}"


def _videos_of(run_dir: str) -> dict[str, str | None]:
    """Row key -> downloaded video file, read once from another run folder's record."""
    from batchwan.store.records import read_records

    try:
        return {r.key: r.video_file for r in read_records(Path(run_dir))}
    except Exception:  # another run folder, maybe moved or damaged: the rest still holds
        return {}


class RepeatIndex:
    """The creates one provider account was sent from every run folder on this machine."""

    def __init__(
        self, path: Path, base_url: str, api_key: str, writer: Writer | None = None
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.base_url = base_url.rstrip("/")
        self.account = account_of(api_key)
        self._lock = threading.Lock()  # the reading connection, used from worker threads in turn
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA busy_timeout=10000")  # other runs write here too
        self._conn.executescript(_SCHEMA)
        # The run record's writer thread, when given, writes the index too; else one of ours.
        self._owns_writer = writer is None
        self._writer = Writer(path) if writer is None else writer
        self._side: SideFile | None = None if writer is None else writer.add_side(path)
        self._warned = False
        self._accepted: list[tuple[str, ...]] = []  # task ids noted, not yet written

    @classmethod
    def open(cls, base_url: str, api_key: str, writer: Writer | None = None) -> RepeatIndex | None:
        """The index in the user's state directory; None (with a warning) if it cannot be.

        ``writer``: the run record's writer thread, to write the index as well.
        """
        path = state_dir() / INDEX_FILE
        try:
            return cls(path, base_url, api_key, writer)
        except (OSError, sqlite3.Error) as exc:
            # The run's own record still keeps this folder from sending twice.
            log.warning("cannot open %s (%s): repeats across run folders are not caught", path, exc)
            return None

    def close(self) -> None:
        """Commit what is queued (a shared writer does at its own close) and close the index."""
        if self._accepted:
            with contextlib.suppress(StateError):  # said at each write; the sends still count
                self._writer.write_now(self._accepted_statements(), side=self._side)
        if self._owns_writer:
            self._writer.close()
        with self._lock:
            self._conn.close()

    def earlier(self, content_hashes: Iterable[str], run_dir: Path) -> dict[str, EarlierSend]:
        """content hash -> the first send of it from another run folder, for those sent."""
        here = _folder(run_dir)
        found: dict[str, EarlierSend] = {}
        wanted = list(dict.fromkeys(content_hashes))
        with self._lock:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                cursor = self._conn.execute(
                    "SELECT content_hash, run_dir, position, row_key, task_id FROM sent "
                    f"WHERE base_url = ? AND account = ? AND run_dir != ? "
                    f"AND content_hash IN ({marks}) ORDER BY sent_at",
                    (self.base_url, self.account, here, *chunk),
                )
                for chash, folder, position, key, task_id in cursor:
                    found.setdefault(chash, EarlierSend(folder, position, key, task_id))
        return found

    def _write(self, sql: str, params: Sequence[object]) -> asyncio.Future[None]:
        """Queue one write now; the future settles once it is durable, and never fails."""
        return self._submit([(sql, params)])

    def _submit(self, statements: list[Statement]) -> asyncio.Future[None]:
        """Queue writes now; the future settles once they are durable, and never fails.

        The run's own record is what keeps a row from being sent twice in its folder; a full
        disk here must not stop a create that the record already allows, so a failure is a
        warning (said once), not an error.
        """
        loop = asyncio.get_running_loop()
        written: asyncio.Future[None] = loop.create_future()
        self._writer.submit(Batch(statements, loop, written, side=self._side, on_error=self._warn))
        return written

    def _warn(self, exc: StateError) -> None:
        """Say once that the index could not be written (called on the writer's thread)."""
        if not self._warned:
            self._warned = True
            log.warning(
                "could not write %s (%s): sends from now on may not be seen by other runs",
                self.path, exc,
            )  # fmt: skip

    def about_to_send(self, row: CheckedRow, run_dir: Path) -> asyncio.Future[None]:
        """Say, durably, that this row's create is about to go out (queued at once)."""
        return self._write(
            "INSERT INTO sent (base_url, account, content_hash, run_dir, row_key, position, "
            "task_id, sent_at) VALUES (?, ?, ?, ?, ?, ?, NULL, ?) ON CONFLICT DO UPDATE SET "
            "sent_at = excluded.sent_at, position = excluded.position",
            (self.base_url, self.account, row.content_hash, _folder(run_dir), row.key,
             row.position, iso_utc(now_utc())),
        )  # fmt: skip

    def accepted(self, row: CheckedRow, run_dir: Path, task_id: str) -> asyncio.Future[None]:
        """Note the task id the provider gave this row's create, written with the next few.

        Only the send itself must be durable before the create goes out (``about_to_send``);
        a run killed before its task ids reach the index leaves those sends counted, with no
        task id to show in the message of a later repeat.
        """
        self._accepted.append(
            (task_id, self.base_url, self.account, row.content_hash, _folder(run_dir))
        )
        if len(self._accepted) >= ACCEPTED_BATCH:
            return self._submit(self._accepted_statements())
        noted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        noted.set_result(None)
        return noted

    def _accepted_statements(self) -> list[Statement]:
        statements: list[Statement] = [(_ACCEPTED_SQL, params) for params in self._accepted]
        self._accepted = []
        return statements

    def not_sent(self, row: CheckedRow, run_dir: Path) -> asyncio.Future[None]:
        """The create surely did not reach the provider: it is not a send after all."""
        return self._write(
            "DELETE FROM sent WHERE base_url = ? AND account = ? AND content_hash = ? "
            "AND run_dir = ? AND task_id IS NULL",
            (self.base_url, self.account, row.content_hash, _folder(run_dir)),
        )


@functools.lru_cache(maxsize=64)
def _folder(run_dir: Path) -> str:
    # Asked twice for every create of a run: resolving the path each time costs syscalls.
    return str(run_dir.resolve())


def hold_repeats(
    rows: Sequence[CheckedRow],
    index: RepeatIndex,
    run_dir: Path,
    already_here: Iterable[str] = (),
) -> list[CheckedRow]:
    """Mark rows already sent from another run folder ``duplicate``, saying where.

    ``already_here``: keys this run folder has sent itself; those rows are left as they are.
    """
    here = set(already_here)
    candidates = [r for r in rows if r.status is Status.PENDING and r.key not in here]
    earlier = index.earlier((r.content_hash for r in candidates), run_dir)
    if not earlier:
        return list(rows)
    videos = {folder: _videos_of(folder) for folder in {e.run_dir for e in earlier.values()}}
    out: list[CheckedRow] = []
    for row in rows:
        send = earlier.get(row.content_hash)
        if send is None or row.status is not Status.PENDING or row.key in here:
            out.append(row)
            continue
        where = send.describe(videos[send.run_dir])
        message = (
            f"already sent from {where}; not sent again (pass --allow-repeat to "
            "send it anyway, or give it a `take` column for a deliberate second take)"
        )
        issue = RowIssue(row.position, "", message, line=row.line)
        out.append(dataclasses.replace(row, status=Status.DUPLICATE, issues=(issue,)))
    held = sum(1 for before, after in zip(rows, out, strict=True) if before is not after)
    log.info("%d rows were already sent from other run folders", held)
    return out


def hold_for_run(
    rows: Sequence[CheckedRow], run_dir: Path, base_url: str, api_key: str
) -> list[CheckedRow]:
    """``hold_repeats`` for one run: this folder's own sends left alone, the index closed."""
    from batchwan.store.records import read_sent_keys
    from batchwan.store.schema import STATE_FILE

    index = RepeatIndex.open(base_url, api_key)
    if index is None:
        return list(rows)
    try:
        mine: list[str] = []
        if (run_dir / STATE_FILE).is_file():
            mine = read_sent_keys(run_dir)  # one query: no record is built
        return hold_repeats(rows, index, run_dir, mine)
    finally:
        index.close()
