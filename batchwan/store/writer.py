"""The one thread that writes state.db: group commits, checkpoints, and a watch on the file.

Everything queued so far is committed in one transaction (group commit): each caller still
waits for its own change to be durable, but 64 workers share one fsync instead of paying one
each. After a commit that holds a "sending" mark or a task id, the WAL is checkpointed into
state.db itself, so a copy of state.db without its ``-wal`` still knows every create that was
sent. Before each commit the writer checks that state.db (and its ``-wal``) are still the files
it opened: a record deleted or replaced under a running run must stop the run, not be written
into a file nobody will ever read.

The same thread also writes side files (the machine's index of sends) in transactions of their
own: a create that waits for both its record and the index is woken once, and the loop's thread
competes for the GIL with one writer, not two. A side file's failure reaches only its callers.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchwan.errors import StateError
from batchwan.store.schema import connect

log = logging.getLogger(__name__)

#: Even without a critical change, fold the WAL into state.db at least this often.
CHECKPOINT_SECONDS = 5.0
#: How long each commit waits for more writes to join it.
GATHER_SECONDS = 0.002

Statement = tuple[str, Sequence[Any]]


class SideFile:
    """Another SQLite file that the record's writer thread writes (see ``Writer.add_side``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = connect(path)
        self.conn.execute("PRAGMA busy_timeout=10000")  # other runs write here too

    def commit(self, work: list[Batch]) -> None:
        """Commit every statement of ``work`` in one transaction."""
        commit_all(self.conn, work)


@dataclass
class Batch:
    """Statements one caller wants durable together; ``critical`` asks for a checkpoint."""

    statements: list[Statement]
    loop: asyncio.AbstractEventLoop | None
    waiter: Any  # an asyncio.Future on ``loop``, or a _Done for a thread
    critical: bool = False
    side: SideFile | None = None  # None: the record itself
    # Given: a failure is told to it (on the writer's thread) and the waiter settles without
    # one, for a write its callers may go on without (the machine's index of sends).
    on_error: Callable[[StateError], None] | None = None


class Done(threading.Event):
    """A thread's wait for its writes, with the error if they failed."""

    error: BaseException | None = None


@dataclass
class _FileId:
    """Which file a path named when it was opened (device and inode)."""

    path: Path
    ident: tuple[int, int] | None = field(default=None)

    def remember(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            st = os.stat(self.path)
            self.ident = (st.st_dev, st.st_ino)

    def problem(self) -> str | None:
        """Why this path no longer names the file first seen there, or None."""
        if self.ident is None:
            return None
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return f"{self.path.name} was deleted"
        if (st.st_dev, st.st_ino) != self.ident:
            return f"{self.path.name} was replaced by another file"
        return None


class Writer:
    """Owns the write connection; commits queued batches in groups on its own thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._queue: queue.SimpleQueue[Batch | None] = queue.SimpleQueue()
        self._conn = connect(path)
        self._files = [_FileId(path), _FileId(path.with_name(path.name + "-wal"))]
        for file in self._files:
            file.remember()
        self._broken: str | None = None
        self._last_checkpoint = time.monotonic()
        self.changes = 0  # rows changed by every commit so far (tests count writes with it)
        self._sides: list[SideFile] = []
        self._thread = threading.Thread(target=self._loop, name="batchwan-record", daemon=True)
        self._thread.start()

    def add_side(self, path: Path) -> SideFile:
        """Let this thread also write ``path``; batches name it with ``side``. Closed with us."""
        side = SideFile(path)
        self._sides.append(side)
        return side

    def submit(self, batch: Batch) -> None:
        """Queue a batch; its waiter is settled once the batch is durable (or failed)."""
        self._queue.put(batch)

    def write_now(
        self, statements: list[Statement], *, critical: bool = False, side: SideFile | None = None
    ) -> None:
        """Write from a thread that may block: return once durable, raise StateError if not."""
        done = Done()
        self.submit(Batch(statements, None, done, critical, side))
        done.wait()
        if done.error is not None:
            raise StateError(f"{self.path}: could not write the run's record: {done.error}")

    def close(self) -> None:
        """Commit what is queued, fold the WAL into state.db, and stop the thread."""
        self._queue.put(None)
        self._thread.join()
        if self._broken is None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._conn.close()
        for side in self._sides:
            side.conn.close()

    def _loop(self) -> None:
        stop = False
        while not stop:
            items = [self._queue.get()]
            # Each commit waits a moment for the writes its neighbours are about to queue:
            # fewer, larger commits hand the GIL back and forth with the loop's thread far
            # less often (a 10,000-row run spends about 7% less CPU for 2 ms a commit).
            time.sleep(GATHER_SECONDS)
            while True:  # take everything queued so far into one transaction
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = None in items
            work = [item for item in items if item is not None]
            if not work:
                continue
            settled: list[tuple[Batch, BaseException | None]] = []
            for side, batches in _by_side(work):
                error: BaseException | None = None
                try:
                    if side is None:
                        self._commit(batches)
                    else:
                        side.commit(batches)
                # Any failure at all must reach the callers: a writer thread that died silently
                # would leave every worker waiting for a commit that never comes.
                except Exception as exc:
                    error = exc
                settled += [(batch, error) for batch in batches]
            settle_all(settled)

    def _commit(self, work: list[Batch]) -> None:
        if self._broken is None:
            self._broken = next((p for f in self._files if (p := f.problem())), None)
        if self._broken is not None:
            raise StateError(
                f"{self._broken} while the run was writing it; stopped sending. Nothing more "
                "can be recorded there: look for what removed it before running again"
            )
        before = self._conn.total_changes
        commit_all(self._conn, work)
        self.changes += self._conn.total_changes - before
        if self._files[1].ident is None:
            self._files[1].remember()  # the WAL appears with the first commit
        now = time.monotonic()
        if any(b.critical for b in work) or now - self._last_checkpoint > CHECKPOINT_SECONDS:
            self._checkpoint(now)

    def _checkpoint(self, now: float) -> None:
        busy, _, _ = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if busy:  # a reader holds an old snapshot; the next commit tries again
            log.debug("checkpoint of %s postponed: a reader is busy", self.path)
        self._last_checkpoint = now


def commit_all(conn: sqlite3.Connection, work: list[Batch]) -> None:
    """Every statement of ``work``, in order, in one transaction on ``conn``.

    Runs of the same statement go in one call: one hand-off of the GIL for the run, not one
    per row, while the event loop's thread competes for it.
    """
    with conn:
        for sql, run in _runs(s for batch in work for s in batch.statements):
            conn.executemany(sql, run)


def _runs(statements: Iterable[Statement]) -> Iterator[tuple[str, list[Sequence[Any]]]]:
    """Consecutive statements with the same SQL, as (sql, their parameters), in order."""
    for sql, group in itertools.groupby(statements, key=lambda s: s[0]):
        yield sql, [params for _, params in group]


def _by_side(work: list[Batch]) -> list[tuple[SideFile | None, list[Batch]]]:
    """The batches of each file, the record's first, each file's in the order they came."""
    files: dict[SideFile | None, list[Batch]] = {None: []}
    for batch in work:
        files.setdefault(batch.side, []).append(batch)
    return [(side, batches) for side, batches in files.items() if batches]


Settled = list[tuple[asyncio.Future[None], BaseException | None]]


def settle_all(work: list[tuple[Batch, BaseException | None]]) -> None:
    """Tell every caller of a group that its writes are durable (or failed, and why).

    Coroutines on one loop are woken with one hand-off for the whole group, not one each.
    """
    by_loop: dict[asyncio.AbstractEventLoop, Settled] = {}
    for batch, error in work:
        if error is not None and batch.on_error is not None:
            batch.on_error(_failure(error))
            error = None
        if batch.loop is None:  # a thread waiting on a Done
            batch.waiter.error = error
            batch.waiter.set()
        else:
            by_loop.setdefault(batch.loop, []).append((batch.waiter, error))
    for loop, futures in by_loop.items():
        # A closed loop means nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle_futures, futures)


def _settle_futures(futures: Settled) -> None:
    for future, error in futures:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(_failure(error))


def _failure(error: BaseException) -> StateError:
    """What a caller is told of a failed commit (a new exception for each caller)."""
    if isinstance(error, StateError):
        return StateError(str(error))
    return StateError(f"could not write the run's record: {error!r}")
