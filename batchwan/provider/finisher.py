"""One thread that finishes downloaded videos in batches: write the rest, fsync, rename.

A worker thread per file (``asyncio.to_thread``) costs a hand-off each way for every video, and
six such threads wrestle the loop's thread for the GIL at every system call. This thread takes
every file that is ready, writes them all, fsyncs them all at once on a few helper threads (an
fsync holds no GIL but waits on the disk; side by side the file system folds their flushes
together), renames them, and wakes the loop once for the whole batch. It stops after a moment
with nothing to do, so a library caller is not left with threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

#: Seconds without work after which the thread ends (the next file starts it again).
IDLE_SECONDS = 1.0
#: Files of a batch fsynced at once.
SYNC_THREADS = 8


class Finishable(Protocol):
    """A download's part file, as the finisher drives it."""

    def write(self, chunks: list[bytes]) -> None:
        """Append the last chunks."""

    def sync(self) -> None:
        """Make the content durable."""

    def publish(self) -> None:
        """Close the file and give it its real name."""


@dataclass
class _Job:
    file: Finishable
    chunks: list[bytes]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]
    error: BaseException | None = None


class FileFinisher:
    """Finishes part files on a thread of its own, in batches."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running = False

    def finish(self, file: Finishable, chunks: list[bytes]) -> asyncio.Future[None]:
        """Queue ``file`` with its last ``chunks``; the future settles once it is published."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._queue.put(_Job(file, chunks, loop, future))
        with self._lock:
            if not self._running:
                self._running = True
                threading.Thread(target=self._loop, name="batchwan-videos", daemon=True).start()
        return future

    def _loop(self) -> None:
        with ThreadPoolExecutor(SYNC_THREADS, thread_name_prefix="batchwan-fsync") as syncs:
            while True:
                try:
                    jobs = [self._queue.get(timeout=IDLE_SECONDS)]
                except queue.Empty:
                    with self._lock:
                        if self._queue.empty():  # nothing came in meanwhile: really idle
                            self._running = False
                            return
                    continue
                with contextlib.suppress(queue.Empty):
                    while True:
                        jobs.append(self._queue.get_nowait())
                for job in jobs:
                    _write(job)
                list(syncs.map(_sync, [job for job in jobs if job.error is None]))
                for job in jobs:
                    if job.error is None:
                        _publish(job)
                _settle(jobs)


def _attempt(job: _Job, action: Callable[[], None]) -> None:
    try:
        action()
    except BaseException as exc:  # the caller's to handle (a full disk, say), not the thread's
        job.error = exc


def _write(job: _Job) -> None:
    _attempt(job, lambda: job.file.write(job.chunks))


def _sync(job: _Job) -> None:
    _attempt(job, job.file.sync)


def _publish(job: _Job) -> None:
    _attempt(job, job.file.publish)


def _settle(jobs: list[_Job]) -> None:
    """Wake each loop once for all of its jobs."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
    for job in jobs:
        by_loop.setdefault(job.loop, []).append(job)
    for loop, mine in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(_settle_on_loop, mine)


def _settle_on_loop(jobs: list[_Job]) -> None:
    for job in jobs:
        if job.future.done():  # given up on (a deadline); the file is cleaned up by its owner
            continue
        if job.error is None:
            job.future.set_result(None)
        else:
            job.future.set_exception(job.error)
