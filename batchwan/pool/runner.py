"""The pool: submit the valid rows within the provider's limits, follow each task, download.

Which errors may be retried is decided by the client's ``safe_to_resend``: a create is sent
again only when the provider surely did not accept it (429, 503, connection refused). Anything
else on a create that may have been accepted leaves the row ``unknown``, never resent here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from batchwan.errors import (
    AccountError,
    ApiError,
    InputError,
    RateLimited,
    Rejected,
    StateError,
    TaskNotFound,
)
from batchwan.pool.downloads import VideoFolder
from batchwan.pool.limits import (
    CreateWindow,
    InFlight,
    PoolSizes,
    RateWindow,
    SharedPause,
    backoff,
    pool_sizes,
)
from batchwan.store.ledger import Ledger
from batchwan.store.schema import TaskEntry
from batchwan.values import CheckedRow, Status, TaskInfo, TaskState

log = logging.getLogger(__name__)

VIDEOS_DIR = "videos"


class ApiClient(Protocol):
    """What the runner needs of the provider's client."""

    async def create(self, body: dict[str, Any]) -> TaskInfo:
        """Send one create request."""
        ...

    async def get(self, task_id: str) -> TaskInfo:
        """Look up one task."""
        ...

    async def download(self, url: str, dest: Path, *, sync_folder: bool = True) -> int:
        """Stream one video to ``dest``; ``sync_folder=False``: the caller fsyncs the folder."""
        ...


@dataclass(frozen=True)
class RunOptions:
    """How hard to push the provider, and what to do along the way."""

    concurrency: int = 2
    rate: float = 2.0
    poll_interval: float = 20.0
    task_deadline: float = 3600.0
    wait: bool = True
    download: bool = True
    max_cost: float | None = None
    poll_concurrency: int | None = None  # lookups at once; None: follows concurrency
    download_concurrency: int | None = None  # None: follows concurrency, 4 to 64
    poll_rate: float = 20.0  # most lookups per second (Alibaba documents 20 for status queries)
    create_tries: int = 8  # sends of a create that the provider surely did not accept
    retry_after_cap: float = 60.0
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    not_found_limit: int = 5
    download_tries: int = 3
    stop_grace: float = 20.0  # how long an interrupted run waits for creates already on the wire

    def sizes(self) -> PoolSizes:
        """Lookups, downloads and connections at once, following ``concurrency``."""
        return pool_sizes(
            self.concurrency, polls=self.poll_concurrency, downloads=self.download_concurrency
        )


class StopReason(StrEnum):
    """Why a run ended before every row was done."""

    ACCOUNT = "account"
    BUDGET = "budget"
    INTERRUPTED = "interrupted"
    UNREACHABLE = "unreachable"
    NO_ENDPOINT = "no_endpoint"


@dataclass(frozen=True)
class RunEvent:
    """Progress, for whoever shows it (the CLI draws bars or prints lines)."""

    kind: str  # "submitted", "finished" or "downloaded"
    message: str
    status: Status | None = None


@dataclass(frozen=True)
class RunOutcome:
    """How the run ended."""

    stop: StopReason | None
    message: str | None = None


class _StopRun(Exception):
    """Raised inside a worker to end the whole run (account, budget, no endpoint, unreachable)."""


def video_name(row: CheckedRow | None, task_id: str) -> str:
    """``<row>-<id or task id>.mp4``, with anything unsafe in a file name replaced."""
    if row is None:
        stem = f"0-{task_id}"
    else:
        stem = f"{row.position}-{row.row_id if row.own_id else task_id}"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem)[:150] + ".mp4"


class Runner:
    """Submits, polls and downloads the rows of one run folder."""

    def __init__(
        self,
        ledger: Ledger,
        client: ApiClient,
        options: RunOptions,
        *,
        body_for: Callable[[CheckedRow], dict[str, Any]],
        on_event: Callable[[RunEvent], None] = lambda event: None,
    ) -> None:
        self.ledger = ledger
        self.client = client
        self.options = options
        self._body_for = body_for
        self._emit = on_event
        self._stopping = asyncio.Event()  # stop everything: polls too
        self._no_more_creates = asyncio.Event()  # stop sending; keep following what was sent
        self._wire_idle = asyncio.Event()  # no create is waiting for its answer
        self._wire_idle.set()
        self._on_wire = 0
        self._stop: StopReason | None = None
        self._stop_message: str | None = None
        self._fatal: StateError | None = None  # the record could not be written: stop, report
        self._unreachable = 0  # creates in a row, across workers, that never reached the provider
        self._in_flight = InFlight(options.concurrency)
        self._window = CreateWindow(options.rate)
        self._pause = SharedPause()
        sizes = options.sizes()
        self._polls = asyncio.Semaphore(sizes.polls)
        self._poll_window = RateWindow(options.poll_rate)
        self._downloads = asyncio.Semaphore(sizes.downloads)
        self._videos = VideoFolder(ledger.run_dir / VIDEOS_DIR)
        self._followers: set[asyncio.Task[None]] = set()
        self._submitting = 0  # submit workers still running
        # Set whenever the run may have reached a point _finish waits for: a submit worker
        # ended, the last follower ended, or the run is stopping. One event and two counters
        # keep the wait O(1) per ended task, where waiting on every follower again was O(n).
        self._progress = asyncio.Event()
        self._committed = 0.0
        self._rows_by_key: dict[str, CheckedRow] = {}
        self._accepted_at: dict[str, float] = {}  # row key -> loop time its create was answered

    # -- control ---------------------------------------------------------------------------------

    def stop(self, reason: StopReason = StopReason.INTERRUPTED, message: str | None = None) -> None:
        """Stop sending creates and, unless it is the budget, stop following tasks too.

        Tasks already accepted keep running at the provider; the next run collects them.
        """
        if self._stop is None:
            self._stop = reason
            self._stop_message = message
            log.warning("stopping: %s", message or reason.value)
        self._no_more_creates.set()
        if reason is not StopReason.BUDGET:
            self._stopping.set()
            self._progress.set()

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless the run is stopping; True when it is.

        A plain sleep is enough: when the run stops, every sleeping worker is cancelled.
        """
        if not self._stopping.is_set():
            await asyncio.sleep(max(0.0, seconds))
        return self._stopping.is_set()

    # -- the run ---------------------------------------------------------------------------------

    async def run(self, rows: Sequence[CheckedRow]) -> RunOutcome:
        """Submit every pending row, follow every running task, and download every video."""
        self._rows_by_key = {row.key: row for row in rows if row.status is Status.PENDING}
        self._committed = self.ledger.committed_cost()
        entries = self.ledger.entries
        for entry in entries.values():
            if entry.status is Status.RUNNING and entry.task_id:
                self._in_flight.take()
                self._follow(self._poll(entry))
            elif self._download_due(entry):
                self._follow(self._download(entry))
        queue = deque(
            row for row in self._rows_by_key.values() if entries[row.key].status is Status.PENDING
        )
        submitters = [
            asyncio.create_task(self._submit_worker(queue))
            for _ in range(min(self.options.concurrency, len(queue)))
        ]
        self._submitting = len(submitters)
        for task in submitters:
            task.add_done_callback(self._submitter_done)
            task.add_done_callback(self._worker_done)
        try:
            await self._finish()
        finally:
            for task in (*submitters, *self._followers):
                task.cancel()
            await asyncio.gather(*submitters, *self._followers, return_exceptions=True)
        if self._fatal is not None:
            raise self._fatal
        return RunOutcome(self._stop, self._stop_message)

    async def _finish(self) -> None:
        """Wait for the submitters, then (unless told not to) for every task to end."""
        while self._submitting and not self._stopping.is_set():
            await self._next_progress()
        while self.options.wait and self._followers and not self._stopping.is_set():
            await self._next_progress()
        if self._stopping.is_set():
            # A create already on the wire gets its answer recorded, within a grace period;
            # one still unanswered after it is found `unknown` by the next run.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wire_idle.wait(), self.options.stop_grace)

    async def _next_progress(self) -> None:
        self._progress.clear()
        await self._progress.wait()

    def _follow(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._followers.add(task)
        task.add_done_callback(self._follower_done)
        task.add_done_callback(self._worker_done)

    def _follower_done(self, task: asyncio.Task[None]) -> None:
        self._followers.discard(task)
        if not self._followers:
            self._progress.set()

    def _submitter_done(self, task: asyncio.Task[None]) -> None:
        self._submitting -= 1
        self._progress.set()

    def _worker_done(self, task: asyncio.Task[None]) -> None:
        """A worker that died of an error stops the run; it must never fail silently."""
        if task.cancelled() or (exc := task.exception()) is None:
            return
        if isinstance(exc, StateError):
            self._fatal = self._fatal or exc
        else:
            log.error("a worker failed: %r", exc, exc_info=exc)
        self.stop(StopReason.INTERRUPTED, f"stopped after an internal error: {exc}")

    # -- submitting ------------------------------------------------------------------------------

    async def _submit_worker(self, queue: deque[CheckedRow]) -> None:
        while queue and not self._no_more_creates.is_set():
            row = queue.popleft()
            if not await self._in_flight.acquire():
                return  # every place is held by tasks past their deadline
            accepted = False
            try:
                if not self._no_more_creates.is_set():
                    accepted = await self._submit(row)
            except _StopRun:
                return
            finally:
                if not accepted:
                    await self._in_flight.release()
            if accepted:
                self._follow(
                    self._poll(self.ledger.entries[row.key], self._accepted_at.pop(row.key))
                )

    def _over_budget(self, entry: TaskEntry) -> bool:
        limit = self.options.max_cost
        return limit is not None and self._committed + entry.cost > limit + 1e-9

    async def _submit(self, row: CheckedRow) -> bool:
        """Send one row's create, retrying only what surely was not accepted; True if accepted."""
        entry = self.ledger.entries[row.key]
        try:
            body = await self._body(row)
        except (InputError, OSError) as exc:  # e.g. the image vanished since it was checked
            await self.ledger.create_settled(
                row.key, Status.PENDING, f"not sent: {exc}; put the file back and run again"
            )
            return False
        last: ApiError | None = None
        for attempt in range(self.options.create_tries):
            await self._pause.wait()
            await self._window.acquire()
            if self._no_more_creates.is_set():
                self._window.release_later()
                return False
            if self._over_budget(entry):
                self._window.release_later()
                await self._refuse_budget(row)
                raise _StopRun
            self._committed += entry.cost  # counted before the await: no other worker slips in
            self._on_wire += 1
            self._wire_idle.clear()
            try:
                await self.ledger.begin_create(row.key)
                info = await self.client.create(body)
                self._accepted_at[row.key] = asyncio.get_running_loop().time()
                await self.ledger.create_accepted(row.key, info.task_id)
            except ApiError as exc:
                last = exc
                self._committed -= entry.cost if exc.safe_to_resend else 0.0
                if not await self._create_failed(row, entry, exc, attempt):
                    return False
                continue
            finally:
                self._window.release_later()
                self._on_wire -= 1
                if self._on_wire == 0:
                    self._wire_idle.set()
            self._unreachable = 0
            self._emit(RunEvent("submitted", f"row {row.position}: task {info.task_id}"))
            log.info("row %s: accepted as task %s", row.position, info.task_id)
            return True
        await self.ledger.create_settled(
            row.key,
            Status.PENDING,
            f"not sent: {self.options.create_tries} tries failed (the last: {last}); "
            "run again later",
        )
        return False

    async def _body(self, row: CheckedRow) -> dict[str, Any]:
        if row.image_path is None:
            return self._body_for(row)
        # Reading and encoding an image of up to 10 MB would stall every other worker.
        return await asyncio.to_thread(self._body_for, row)

    async def _create_failed(
        self, row: CheckedRow, entry: TaskEntry, exc: ApiError, attempt: int
    ) -> bool:
        """Record why a create failed; True when it may be sent again."""
        where = f"row {row.position}"
        if isinstance(exc, AccountError):
            await self.ledger.create_settled(row.key, Status.PENDING, f"not sent: {exc}")
            self.stop(StopReason.ACCOUNT, f"{exc} (trace {exc.trace_id or '-'})")
            raise _StopRun from exc
        if isinstance(exc, Rejected) and exc.http_status == 404:
            # No such endpoint: a wrong --base-url or --model, the same for every row.
            self._committed -= entry.cost
            message = f"not sent: {exc}; check --base-url and --model, then run again"
            self.stop(StopReason.NO_ENDPOINT, message)
            await self.ledger.settle_pending(self._rows_by_key, message)
            await self.ledger.create_settled(row.key, Status.PENDING, message)
            raise _StopRun from exc
        if isinstance(exc, Rejected):
            self._committed -= entry.cost
            await self.ledger.create_settled(row.key, Status.FAILED, str(exc))
            self._emit(RunEvent("finished", f"{where}: rejected: {exc}", Status.FAILED))
            log.warning("%s: rejected: %s (trace %s)", where, exc, exc.trace_id)
            return False
        if not exc.safe_to_resend:
            message = (
                f"{exc}; the task may or may not exist at the provider "
                "(run with --resubmit-unknown to send it again)"
            )
            await self.ledger.create_settled(row.key, Status.UNKNOWN, message)
            self._emit(RunEvent("finished", f"{where}: unknown: {exc}", Status.UNKNOWN))
            log.warning("%s: outcome unknown: %s (trace %s)", where, exc, exc.trace_id)
            return False
        await self.ledger.create_settled(row.key, Status.PENDING, f"not sent yet: {exc}")
        await self._count_unreachable(exc)
        delay = backoff(attempt, base=self.options.backoff_base, cap=self.options.backoff_cap)
        if isinstance(exc, RateLimited):
            if exc.retry_after is not None:
                delay = min(exc.retry_after, self.options.retry_after_cap)
            self._pause.extend(delay)  # one 429 slows every worker, not only this one
        log.info("%s: %s; trying again in %.1f s", where, exc, delay)
        return not await self._sleep(delay)

    async def _count_unreachable(self, exc: ApiError) -> None:
        """Stop early when create after create never reaches the provider at all.

        Otherwise an unreachable provider would cost every row its full round of back-offs:
        many minutes for a sheet that cannot make progress anyway.
        """
        if exc.http_status is not None:  # the provider answered: it is reachable
            self._unreachable = 0
            return
        self._unreachable += 1
        if self._unreachable < self.options.create_tries:
            return
        message = (
            f"not sent: the provider could not be reached ({exc}); "
            "check --base-url and the network, then run again"
        )
        self.stop(StopReason.UNREACHABLE, message)
        await self.ledger.settle_pending(self._rows_by_key, message)
        raise _StopRun

    async def _refuse_budget(self, row: CheckedRow) -> None:
        limit = self.options.max_cost or 0.0
        message = (
            f"not sent: --max-cost ${limit:.2f} reached "
            f"(${self._committed:.2f} committed in this run folder)"
        )
        self.stop(StopReason.BUDGET, f"row {row.position}: {message}")
        await self.ledger.settle_pending(self._rows_by_key, message)

    # -- following -------------------------------------------------------------------------------

    async def _poll(self, entry: TaskEntry, accepted_at: float | None = None) -> None:
        """Ask after one task until it ends, its deadline passes, or the run stops.

        The first wait counts from when the create was answered, not from when its task id
        was committed, so the durable write costs the task no time at the provider.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.task_deadline
        not_found = errors = 0
        interval = self.options.poll_interval
        released = False
        since = loop.time() - accepted_at if accepted_at is not None else 0.0
        try:
            while True:
                wait = interval * random.uniform(0.8, 1.2) - since
                since = 0.0
                if await self._sleep(wait):
                    return
                if loop.time() > deadline:
                    released = True  # the task may still run there: its place stays taken
                    await self._task_overdue(entry)
                    return
                try:
                    async with self._polls, self._poll_window:
                        info = await self.client.get(entry.task_id or "")
                except TaskNotFound as exc:
                    not_found += 1
                    if not_found >= self.options.not_found_limit:
                        await self._task_lost(entry, exc)
                        await self._in_flight.release()
                        released = True
                        return
                    continue
                except AccountError as exc:
                    self.stop(StopReason.ACCOUNT, str(exc))
                    return
                except ApiError as exc:
                    errors += 1
                    log.info("task %s: poll failed (%s); trying again", entry.task_id, exc)
                    await self._sleep(backoff(errors, base=interval, cap=self.options.backoff_cap))
                    continue
                if info.state is TaskState.IN_PROGRESS:
                    continue
                await self._in_flight.release()
                released = True
                await self._task_ended(entry, info)
                return
        finally:
            if not released:
                await self._in_flight.release()

    async def _task_overdue(self, entry: TaskEntry) -> None:
        """Stop following a task past its deadline; it keeps its place until the run ends.

        Freeing the place would let a new create go out while this task may still be running
        at the provider: more tasks at once than --concurrency. Polling on forever would make
        the deadline meaningless. So the row stays `running` (the next run collects it), and
        once every place is held by such tasks, the rows not sent stay pending, saying why.
        """
        minutes = self.options.task_deadline / 60
        await self.ledger.note(
            entry.key,
            f"still running at the provider after {minutes:.0f} min; run again to collect it",
        )
        if self._in_flight.strand():
            self._no_more_creates.set()
            await self._in_flight.close()
            await self.ledger.settle_pending(
                self._rows_by_key,
                f"not sent: all {self._in_flight.limit} places of --concurrency are held by "
                "tasks still running at the provider past their deadline; run again later",
            )

    async def _task_lost(self, entry: TaskEntry, exc: ApiError) -> None:
        message = (
            f"the provider does not know task {entry.task_id} "
            f"({self.options.not_found_limit} lookups answered 404): {exc}"
        )
        await self.ledger.task_finished(entry.key, Status.FAILED, error=message)
        self._committed -= entry.cost
        self._emit(RunEvent("finished", message, Status.FAILED))

    async def _task_ended(self, entry: TaskEntry, info: TaskInfo) -> None:
        row = self._rows_by_key.get(entry.key)
        where = f"row {row.position}" if row else f"task {entry.task_id}"
        if info.state is TaskState.SUCCEEDED and info.videos:
            await self.ledger.task_finished(entry.key, Status.SUCCEEDED, video_url=info.videos[0])
            self._emit(RunEvent("finished", f"{where}: succeeded", Status.SUCCEEDED))
            if self._download_due(entry):
                # Its own follower: the place in flight is free already, and a lookup worker
                # must not wait on a busy disk or video host.
                self._follow(self._download(entry))
            return
        if info.state is TaskState.SUCCEEDED:
            message = f"the provider reported success but returned no video (task {info.task_id})"
        else:
            message = f"the provider failed the task: {info.error or 'no reason given'}"
        self._committed -= entry.cost  # failed tasks are not billed
        await self.ledger.task_finished(entry.key, Status.FAILED, error=message)
        self._emit(RunEvent("finished", f"{where}: {message}", Status.FAILED))
        log.warning("%s: %s (trace %s)", where, message, info.trace_id)

    # -- downloading -----------------------------------------------------------------------------

    def _download_due(self, entry: TaskEntry) -> bool:
        if not self.options.download or entry.status is not Status.SUCCEEDED:
            return False
        if not entry.video_url:
            return False
        done = entry.video_file and (self.ledger.run_dir / entry.video_file).is_file()
        return not done

    async def _download(self, entry: TaskEntry) -> None:
        """Fetch one video into videos/, retrying a few times; a failure is noted, not fatal."""
        relative = (
            f"{VIDEOS_DIR}/{video_name(self._rows_by_key.get(entry.key), entry.task_id or '')}"
        )
        dest = self.ledger.run_dir / relative
        for attempt in range(self.options.download_tries):
            try:
                async with self._downloads:
                    await self._videos.ready()
                    size = await self.client.download(
                        entry.video_url or "", dest, sync_folder=False
                    )
                # Its name durable before the record says it is there (see pool.downloads).
                await self._videos.sync()
            except (ApiError, OSError) as exc:  # OSError: our own disk, e.g. full
                if attempt + 1 < self.options.download_tries and not await self._sleep(
                    backoff(attempt, base=self.options.backoff_base, cap=10.0)
                ):
                    continue
                await self.ledger.note(entry.key, f"video not downloaded: {exc}; run again")
                return
            await self.ledger.note(entry.key, None, video_file=relative)
            self._emit(RunEvent("downloaded", f"{relative} ({size} bytes)"))
            return
