"""The pool: submit the valid rows within the provider's limits, follow each task, download.

Which errors may be retried is decided by the client's ``safe_to_resend``: a create is sent
again only when the provider surely did not accept it (429, 503, connection refused). Anything
else on a create that may have been accepted leaves the row ``unknown``, never resent here.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import logging
import os
import random
import re
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from batchwan.errors import (
    AccountError,
    ApiError,
    DiskFull,
    InputError,
    RateLimited,
    Rejected,
    StateError,
    TaskNotFound,
    VideoRefused,
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
from batchwan.safe_text import one_line
from batchwan.store.base import Claim, Store
from batchwan.store.repeats import RepeatIndex
from batchwan.store.schema import TaskEntry
from batchwan.values import CheckedRow, Status, TaskInfo, TaskState

log = logging.getLogger(__name__)

VIDEOS_DIR = "videos"


class ApiClient(Protocol):
    """What the runner needs of the provider's client."""

    async def create(self, body: dict[str, Any], *, model: str | None = None) -> TaskInfo:
        """Send one create request (to ``model``'s path; None: the client's own model)."""
        ...

    async def get(self, task_id: str, *, model: str | None = None) -> TaskInfo:
        """Look up one task of ``model`` (None: the client's own model)."""
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
    limit: int | None = None  # send at most this many new rows in this run (--limit)

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


def _record_error(exc: StateError | OSError) -> StateError:
    """What a failed write of the record (or of a video) means for the run."""
    # SQLite says "database or disk is full"; the OS says ENOSPC.
    full = getattr(exc, "errno", None) == errno.ENOSPC or "disk is full" in str(exc)
    if isinstance(exc, DiskFull) or full:
        said = str(exc) if isinstance(exc, DiskFull) else f"the disk is full ({exc})"
        return DiskFull(
            f"{said}; free some space and run again: nothing sent is lost, the next run collects it"
        )
    if isinstance(exc, StateError):
        return exc
    return StateError(f"could not write the run's record: {exc}")


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
        ledger: Store,
        client: ApiClient,
        options: RunOptions,
        *,
        body_for: Callable[[CheckedRow], dict[str, Any]],
        on_event: Callable[[RunEvent], None] = lambda event: None,
        repeats: RepeatIndex | None = None,
        limits: tuple[InFlight, CreateWindow] | None = None,
    ) -> None:
        self.ledger = ledger
        self._repeats = repeats  # creates sent from every run folder, to never repeat one
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
        # A shared store counts these across runners; by default they are this process's own.
        self._in_flight, self._window = limits or (
            InFlight(options.concurrency),
            CreateWindow(options.rate),
        )
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
        self._rows_by_key: dict[str, CheckedRow] = {}
        self._accepted_at: dict[str, float] = {}  # row key -> loop time its create was answered
        self._taken_names: set[str] | None = None  # video files chosen in this run folder
        self._unrecorded: dict[str, str] = {}  # row key -> its accepted task, until committed
        self._no_endpoint: set[str] = set()  # models whose create path answered 404
        self._accepted_any = False  # a create was accepted: the base URL is right

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

    @property
    def stopping(self) -> bool:
        """Whether the run was told to stop (a signal, the account, an internal error)."""
        return self._stopping.is_set()

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
        on_disk = self._videos_on_disk() if self.options.download else set()
        for entry in self.ledger.tasks_to_follow(downloads=self.options.download):
            if entry.status is Status.RUNNING and entry.task_id:
                self._in_flight.take()
                self._follow(self._poll(entry), entry)
            elif self._download_due(entry, on_disk):
                self._follow(self._download(entry), entry)
        queue = deque(
            row
            for row in self._rows_by_key.values()
            if self.ledger.status(row.key) is Status.PENDING
        )
        log.info(
            "run start: %s rows to send, %s tasks to follow; concurrency %s, rate %s/s, "
            "poll every %s s, wait %s, download %s, max cost %s",
            len(queue), len(self._followers), self.options.concurrency, self.options.rate,
            self.options.poll_interval, self.options.wait, self.options.download,
            self.options.max_cost,
        )  # fmt: skip
        await self._hold_over_limit(queue)
        submitters = [
            asyncio.create_task(self._submit_worker(queue))
            for _ in range(min(self.options.concurrency, len(queue)))
        ]
        self._submitting = len(submitters)
        for task in submitters:
            task.add_done_callback(self._submitter_done)
        try:
            await self._finish()
        finally:
            for task in (*submitters, *self._followers):
                task.cancel()
            await asyncio.gather(*submitters, *self._followers, return_exceptions=True)
        if self._fatal is not None:
            log.error("run end: the record could not be written: %s", self._fatal)
            raise self._with_unrecorded(self._fatal)
        log.info("run end: %s", self._stop_message or (self._stop or "every row done or sent"))
        return RunOutcome(self._stop, self._stop_message)

    async def _hold_over_limit(self, queue: deque[CheckedRow]) -> None:
        """With --limit N, keep the first N rows to send (in sheet order); the rest stay pending."""
        limit = self.options.limit
        if limit is None or len(queue) <= limit:
            return
        held = [queue.pop().key for _ in range(len(queue) - limit)]
        await self.ledger.settle_pending(held, f"not sent: --limit {limit} reached")
        log.info("--limit %d: %d rows left pending", limit, len(held))

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

    def _follow(self, coro: Awaitable[None], entry: TaskEntry) -> None:
        task = asyncio.create_task(self._contained(coro, entry))
        self._followers.add(task)
        task.add_done_callback(self._follower_done)

    # One callback per ended task, not two: each is a call scheduled on the loop.
    def _follower_done(self, task: asyncio.Task[None]) -> None:
        self._followers.discard(task)
        if not self._followers:
            self._progress.set()
        self._worker_done(task)

    def _submitter_done(self, task: asyncio.Task[None]) -> None:
        self._submitting -= 1
        self._progress.set()
        self._worker_done(task)

    def _worker_done(self, task: asyncio.Task[None]) -> None:
        """A worker that died of an error stops the run; it must never fail silently."""
        if task.cancelled() or (exc := task.exception()) is None:
            return
        if isinstance(exc, StateError | OSError):
            self._fatal = self._fatal or _record_error(exc)
        else:
            log.error("a worker failed: %r", exc, exc_info=exc)
        self.stop(StopReason.INTERRUPTED, f"stopped after an internal error: {exc}")

    def _with_unrecorded(self, exc: StateError) -> StateError:
        """The error that ends the run, naming every task accepted but not recorded."""
        if not self._unrecorded:
            return exc
        unrecorded = "; ".join(self._unrecorded.values())
        return type(exc)(
            f"{exc}; accepted by the provider but not recorded: {unrecorded} "
            "(the next run marks these rows `unknown`)"
        )

    async def _contained(self, work: Awaitable[None], entry: TaskEntry) -> None:
        """One row's follow-up: an unexpected error is that row's problem, never the run's."""
        try:
            await work
        except (StateError, OSError):
            raise  # the record could not be written: the run must stop (see _worker_done)
        except Exception as exc:
            log.error("row %s: unexpected error: %r", entry.key, exc, exc_info=exc)
            await self.ledger.note(
                entry.key, f"unexpected error while following it: {one_line(exc)}; run again"
            )

    # -- submitting ------------------------------------------------------------------------------

    async def _submit_worker(self, queue: deque[CheckedRow]) -> None:
        while queue and not self._no_more_creates.is_set():
            row = queue.popleft()
            if row.model in self._no_endpoint:
                continue  # already given the 404's reason
            if not await self._in_flight.acquire():
                return  # every place is held by tasks past their deadline
            accepted = False
            try:
                if not self._no_more_creates.is_set():
                    accepted = await self._submit(row)
            except _StopRun:
                return
            except (StateError, OSError):
                raise  # the record could not be written: the run must stop (see _worker_done)
            except Exception as exc:  # one row's bad value must not stop every run
                accepted = await self._submit_broke(row, exc)
            finally:
                if not accepted:
                    await self._in_flight.release()
            if accepted:
                entry = self.ledger.entry(row.key)
                self._follow(self._poll(entry, self._accepted_at.pop(row.key, None)), entry)

    async def _submit_broke(self, row: CheckedRow, exc: Exception) -> bool:
        """Settle a row whose submission hit an unexpected error; True if it was accepted."""
        log.error("row %s: unexpected error: %r", row.position, exc, exc_info=exc)
        entry = self.ledger.entry(row.key)
        if entry.status is Status.RUNNING:
            return True
        if entry.sending:  # the create may have reached the provider
            message = (
                f"unexpected error after the create was sent: {one_line(exc)}; the task may exist"
            )
            await self.ledger.create_settled(row.key, Status.UNKNOWN, message)
        else:
            await self.ledger.create_settled(row.key, Status.PENDING, f"not sent: {one_line(exc)}")
        return False

    async def _submit(self, row: CheckedRow) -> bool:
        """Send one row's create, retrying only what surely was not accepted; True if accepted."""
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
            self._on_wire += 1
            self._wire_idle.clear()
            try:
                # The index of sends and the record are written at once, each in its own
                # group commit: the create waits for one fsync's time, not two in a row.
                announced = (
                    self._repeats.about_to_send(row, self.ledger.run_dir)
                    if self._repeats is not None
                    else None
                )
                # The store checks the budget and marks the row, in one step.
                claim = await self.ledger.begin_create(row.key, max_cost=self.options.max_cost)
                if announced is not None:
                    await announced
                    if claim is not Claim.SENDING and self._repeats is not None:
                        await self._repeats.not_sent(row, self.ledger.run_dir)
                if claim is Claim.BUDGET:
                    await self._refuse_budget(row)
                    raise _StopRun
                if claim is Claim.TAKEN:  # another runner of a shared run has it
                    return False
                log.info("row %s: create sent (try %s)", row.position, attempt + 1)
                info = await self.client.create(body, model=row.model or None)
                self._accepted_at[row.key] = asyncio.get_running_loop().time()
                self._accepted_any = True
                # Said before the commit, which can fail (a full disk): a task id is never lost.
                log.info(
                    "row %s: accepted as task %s (trace %s)", row.position, info.task_id,
                    info.trace_id,
                )  # fmt: skip
                self._unrecorded[row.key] = f"row {row.position} task {info.task_id}"
                noted = (
                    self._repeats.accepted(row, self.ledger.run_dir, info.task_id)
                    if self._repeats is not None
                    else None
                )
                await self.ledger.create_accepted(row.key, info.task_id)
                del self._unrecorded[row.key]
                if noted is not None:
                    await noted
            except ApiError as exc:
                last = exc
                received = not (exc.safe_to_resend or isinstance(exc, Rejected | AccountError))
                if self._repeats is not None and not received:
                    await self._repeats.not_sent(row, self.ledger.run_dir)
                if not await self._create_failed(row, exc, attempt):
                    return False
                continue
            finally:
                self._window.release_later()
                self._on_wire -= 1
                if self._on_wire == 0:
                    self._wire_idle.set()
            self._unreachable = 0
            self._emit(RunEvent("submitted", f"row {row.position}: task {info.task_id}"))
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

    async def _create_failed(self, row: CheckedRow, exc: ApiError, attempt: int) -> bool:
        """Record why a create failed; True when it may be sent again."""
        where = f"row {row.position}"
        if isinstance(exc, AccountError):
            await self.ledger.create_settled(row.key, Status.PENDING, f"not sent: {exc}")
            self.stop(StopReason.ACCOUNT, f"{exc} (trace {exc.trace_id or '-'})")
            raise _StopRun from exc
        if isinstance(exc, Rejected) and exc.http_status == 404:
            # No such endpoint: a wrong --base-url or --model, the same for every row of this
            # row's model. Rows of other models go on; when no model is left and none was ever
            # accepted, the base URL itself is wrong: stop before polls mark old tasks lost.
            message = f"not sent: {exc}; check --base-url and --model, then run again"
            self._no_endpoint.add(row.model)
            same = [key for key, other in self._rows_by_key.items() if other.model == row.model]
            await self.ledger.settle_pending(same, message)
            await self.ledger.create_settled(row.key, Status.PENDING, message)
            waiting = {
                other.model
                for key, other in self._rows_by_key.items()
                if self.ledger.status(key) is Status.PENDING
            }
            if waiting <= self._no_endpoint and not self._accepted_any:
                self.stop(StopReason.NO_ENDPOINT, message)
                raise _StopRun from exc
            return False
        if isinstance(exc, Rejected):
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
            log.warning("%s: rate limited; every create paused for %.1f s (trace %s)",
                        where, delay, exc.trace_id)  # fmt: skip
        log.info("%s: %s; trying again in %.1f s (trace %s)", where, exc, delay, exc.trace_id)
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
            f"(${self.ledger.committed_cost():.2f} committed in this run)"
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
                        info = await self.client.get(entry.task_id or "", model=entry.model or None)
                except TaskNotFound as exc:
                    not_found += 1
                    if not_found >= self.options.not_found_limit:
                        await self._task_lost(entry, exc)
                        await self._in_flight.release()
                        released = True
                        return
                    continue
                except AccountError as exc:
                    log.warning("task %s: poll refused: %s (trace %s)", entry.task_id, exc,
                                exc.trace_id)  # fmt: skip
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
        self._emit(RunEvent("finished", message, Status.FAILED))
        log.warning("task %s: lost: %s (trace %s)", entry.task_id, message, exc.trace_id)

    async def _task_ended(self, entry: TaskEntry, info: TaskInfo) -> None:
        row = self._rows_by_key.get(entry.key)
        where = f"row {row.position}" if row else f"task {entry.task_id}"
        if info.state is TaskState.SUCCEEDED and info.videos:
            await self.ledger.task_finished(entry.key, Status.SUCCEEDED, video_url=info.videos[0])
            self._emit(RunEvent("finished", f"{where}: succeeded", Status.SUCCEEDED))
            log.info("%s: task %s succeeded (trace %s)", where, entry.task_id, info.trace_id)
            if not self.options.download:
                return
            entry = self.ledger.entry(entry.key)  # as just recorded, with its video's URL
            if self._download_due(entry):
                # Its own follower: the place in flight is free already, and a lookup worker
                # must not wait on a busy disk or video host.
                self._follow(self._download(entry), entry)
            return
        if info.state is TaskState.SUCCEEDED:
            message = f"the provider reported success but returned no video (task {info.task_id})"
        else:
            message = f"the provider failed the task: {info.error or 'no reason given'}"
        await self.ledger.task_finished(entry.key, Status.FAILED, error=message)
        self._emit(RunEvent("finished", f"{where}: {message}", Status.FAILED))
        log.warning("%s: %s (trace %s)", where, message, info.trace_id)

    # -- downloading -----------------------------------------------------------------------------

    def _download_due(self, entry: TaskEntry, on_disk: set[str] | None = None) -> bool:
        """A succeeded row whose video is not in the run folder; ``on_disk``: the files of
        videos/ listed once (a rerun of a big folder then makes no stat per finished row)."""
        if not self.options.download or entry.status is not Status.SUCCEEDED:
            return False
        if not entry.video_url:
            return False
        if not entry.video_file:
            return True
        folder, _, name = entry.video_file.partition("/")
        if on_disk is not None and folder == VIDEOS_DIR and name and "/" not in name:
            return entry.video_file not in on_disk
        return not (self.ledger.run_dir / entry.video_file).is_file()

    def _videos_on_disk(self) -> set[str]:
        """The files in videos/, named as the record names them (``videos/NAME``)."""
        try:
            with os.scandir(self.ledger.run_dir / VIDEOS_DIR) as found:
                return {f"{VIDEOS_DIR}/{e.name}" for e in found if e.is_file()}
        except (FileNotFoundError, NotADirectoryError):
            return set()

    def _new_video_name(self, entry: TaskEntry) -> str:
        """A name no other row of this run folder has had or will get (rows move when inserted)."""
        if self._taken_names is None:
            # The record's names and the folder's files, listed once: not a stat per video.
            folder = self.ledger.run_dir / VIDEOS_DIR
            on_disk = (
                {f"{VIDEOS_DIR}/{p.name}" for p in folder.iterdir()} if folder.is_dir() else set()
            )
            self._taken_names = self.ledger.video_files() | on_disk
        name = video_name(self._rows_by_key.get(entry.key), entry.task_id or "")
        relative = f"{VIDEOS_DIR}/{name}"
        if relative in self._taken_names:
            digest = hashlib.sha256(entry.key.encode("utf-8")).hexdigest()[:8]
            relative = f"{VIDEOS_DIR}/{name.removesuffix('.mp4')}-{digest}.mp4"
        self._taken_names.add(relative)
        return relative

    async def _download(self, entry: TaskEntry) -> None:
        """Fetch one video into videos/, retrying a few times; a failure is noted, not fatal."""
        relative = entry.video_file or self._new_video_name(entry)
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
            except VideoRefused as exc:  # asking again would get the same answer
                await self.ledger.task_finished(
                    entry.key, Status.FAILED, video_url=entry.video_url, error=str(exc)
                )
                self._emit(RunEvent("finished", f"task {entry.task_id}: {exc}", Status.FAILED))
                return
            except (ApiError, OSError) as exc:  # OSError: our own disk, e.g. full
                if attempt + 1 < self.options.download_tries and not await self._sleep(
                    backoff(attempt, base=self.options.backoff_base, cap=10.0)
                ):
                    continue
                await self.ledger.note(entry.key, f"video not downloaded: {exc}; run again")
                log.warning("task %s: video not downloaded: %s (trace %s)", entry.task_id, exc,
                            getattr(exc, "trace_id", None))  # fmt: skip
                return
            await self.ledger.note(entry.key, None, video_file=relative)
            log.info("task %s: downloaded %s (%s bytes)", entry.task_id, relative, size)
            self._emit(RunEvent("downloaded", f"{relative} ({size} bytes)"))
            return
