"""The provider's API, served on loopback: the peer of every test and of the demo.

It checks the bearer key when given one, validates creates as the service does (400 with the
failed envelope), walks each task through ``pending`` and ``processing`` to ``completed`` or
``failed``, serves small valid MP4s as its videos, and injects the service's bad days on
request, seeded (see ``batchwan.sim.faults`` for the streams, so counts are exact).

Two facts of the real service are open, and the simulator produces both sides of each:

- A create answered 500, 502 or 504 may or may not have created its task. For each such fault
  the simulator draws (``error_after_create_rate``, default one half) whether it did; a task so
  created has fate ``error_after_create`` and runs to its end like any other, unseen by the
  client.
- A create whose connection drops may have been accepted: ``drop_before_rate`` drops it before
  the task exists, ``drop_after_rate`` after (fate ``dropped_after``). The client cannot tell
  the two apart; the simulator's stats can.

Task state advances lazily on lookup, by the monotonic clock: no background work per task.
With ``hold`` a task stays ``processing`` until :meth:`Simulator.release`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import math
import threading
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from batchwan.catalog.registry import REGISTRY, unknown_model_message
from batchwan.catalog.spec import ModelSpec
from batchwan.sim.app import build_app
from batchwan.sim.faults import CREATE_FAULTS, FAULT_NAMES, FaultPlan, status_word

VOCABULARIES = ("mulerouter", "alibaba", "mixed")
RATE_FIELDS = (
    "fail_rate",
    "no_video_rate",
    "poll_fault_rate",
    "slow_rate",
    "error_after_create_rate",
    *(f for _, f in CREATE_FAULTS),
)


@dataclass(frozen=True)
class SimConfig:
    """How the simulator behaves: timings, fault rates and limits, all seeded by ``seed``."""

    seed: int = 0
    api_key: str | None = field(default=None, repr=False)
    pending_seconds: float = 0.0
    processing_seconds: float = 0.0
    fail_rate: float = 0.0
    no_video_rate: float = 0.0
    rate_429: float = 0.0
    rate_429_bare: float = 0.0
    retry_after_seconds: float = 1.0
    retry_after_http_date: bool = False  # send Retry-After as an HTTP date, not seconds
    rate_500: float = 0.0
    rate_502: float = 0.0
    rate_503: float = 0.0
    rate_504: float = 0.0
    error_after_create_rate: float = 0.5  # of 500/502/504 creates, the share that made a task
    drop_before_rate: float = 0.0
    drop_after_rate: float = 0.0
    slow_rate: float = 0.0
    slow_seconds: float = 0.0
    not_found_polls: int = 0
    poll_fault_rate: float = 0.0
    max_in_flight: int | None = None
    max_creates_per_second: int | None = None
    hold: bool = False
    status_vocabulary: str = "mixed"
    unserved_models: tuple[str, ...] = ()  # registered models whose paths answer 404 here

    def __post_init__(self) -> None:
        for name in RATE_FIELDS:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if sum(getattr(self, f) for _, f in CREATE_FAULTS) > 1.0 + 1e-9:
            raise ValueError("the create fault rates (429, 5xx, drops) add up to more than 1")
        if self.fail_rate + self.no_video_rate > 1.0 + 1e-9:
            raise ValueError("fail_rate and no_video_rate add up to more than 1")
        for name in ("pending_seconds", "processing_seconds", "slow_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.retry_after_seconds < 0 or self.not_found_polls < 0:
            raise ValueError("retry_after_seconds and not_found_polls must not be negative")
        for name in ("max_in_flight", "max_creates_per_second"):
            limit = getattr(self, name)
            if limit is not None and limit < 1:
                raise ValueError(f"{name} must be at least 1 when set")
        unknown = [name for name in self.unserved_models if name not in REGISTRY]
        if unknown:
            raise ValueError(f"unserved_models: {unknown_model_message(unknown[0])}")
        if self.status_vocabulary not in VOCABULARIES:
            raise ValueError(f"status_vocabulary must be one of {', '.join(VOCABULARIES)}")


@dataclass
class _Task:
    task_id: str
    model: str
    seconds: int  # the video's length: the body's duration, else the model's default
    prompt: str
    payload_hash: str
    fate: str  # completed | failed | no_video | dropped_after | error_after_create
    outcome: str  # how it ends: completed | failed | no_video
    vocabulary: str
    stamp_style: str
    error: tuple[int, str, str]
    created: float  # monotonic
    created_wall: datetime
    released: float | None = None
    lookups: int = 0


@dataclass(frozen=True)
class CreateDecision:
    """What to answer one create: a fault name or None, the 202 body if a task was made, delay."""

    fault: str | None
    envelope: dict[str, Any] | None
    delay: float
    retry_after: str | None = None
    limit_detail: str | None = None


@dataclass(frozen=True)
class GetDecision:
    """What to answer one get: HTTP status, fault name or None, JSON body, delay."""

    status: int
    fault: str | None
    body: Any
    delay: float


class Simulator:
    """The simulated service's state: tasks, counters and the seeded plan; thread-safe."""

    def __init__(self, config: SimConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._plan = FaultPlan(config)
        self._tasks: dict[str, _Task] = {}
        self._unfinished: set[str] = set()
        self._accepted: deque[float] = deque()  # times of recent accepted creates
        self._hashes: set[str] = set()
        self._counts: Counter[str] = Counter()
        self._creates_by_path: Counter[str] = Counter()
        self._faults: Counter[str] = Counter({name: 0 for name in FAULT_NAMES})
        self._max_in_flight = 0
        self._max_per_second = 0

    # -- what tests and the control endpoints call -------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counts of everything seen so far, as ``GET /_sim/stats`` shows them."""
        with self._lock:
            now = self._clock()
            return {
                "creates_received": self._counts["creates_received"],
                "tasks_created": len(self._tasks),
                "duplicate_payloads": self._counts["duplicate_payloads"],
                "in_flight": self._in_flight(now),
                "max_in_flight_seen": self._max_in_flight,
                "max_creates_in_any_second": self._max_per_second,
                "gets": self._counts["gets"],
                "downloads": self._counts["downloads"],
                "rejected_400": self._counts["rejected_400"],
                "not_found_404": self._counts["not_found_404"],
                "creates_by_path": dict(self._creates_by_path),
                "unauthorized_401": self._counts["unauthorized_401"],
                "faults": dict(self._faults),
                "tasks_by_fate": dict(Counter(t.fate for t in self._tasks.values())),
            }

    def release(self, task_id: str | None = None) -> None:
        """Let one held task (or every held task) finish; KeyError for an unknown id."""
        with self._lock:
            now = self._clock()
            if task_id is not None and task_id not in self._tasks:
                raise KeyError(task_id)
            chosen = [self._tasks[task_id]] if task_id else list(self._tasks.values())
            for task in chosen:
                if task.released is None:
                    task.released = now

    def tasks(self) -> list[dict[str, Any]]:
        """Every task created, oldest first, with its current status and fate."""
        with self._lock:
            now = self._clock()
            return [self._describe(task, now) for task in self._tasks.values()]

    # -- what the HTTP handlers call ----------------------------------------------------------

    def auth_problem(self, header: str | None) -> str | None:
        """Why an ``Authorization`` header is refused, or None when it carries the key."""
        key = self.config.api_key
        if not key:
            return None
        if not header:
            return "missing Authorization header"
        scheme, _, token = header.partition(" ")
        if scheme != "Bearer" or not token.strip():
            return "malformed Authorization header: expected 'Bearer <key>'"
        if not hmac.compare_digest(token.strip().encode(), key.encode()):
            return "invalid API key"
        return None

    def count(self, name: str) -> None:
        """Add one to a plain counter."""
        with self._lock:
            self._counts[name] += 1

    def count_create(self, path: str) -> None:
        """Count one create received at a model's path."""
        with self._lock:
            self._creates_by_path[path] += 1

    def rejected_id(self) -> str:
        """A fresh id for the failed envelope of a 400, counting the rejection."""
        with self._lock:
            self._counts["rejected_400"] += 1
            return self._plan.rejected_id()

    def decide_create(self, model: ModelSpec, body: dict[str, Any]) -> CreateDecision:
        """Draw this create's fate, apply the limits, and make the task when it gets one."""
        with self._lock:
            now = self._clock()
            fault = self._plan.create_fault()
            delay = self._slow_delay()
            limited = self._limit(now)
            if limited:
                self._faults[limited[0]] += 1
                return CreateDecision(limited[0], None, delay, self._retry_after(), limited[1])
            if fault is not None:
                self._faults[fault] += 1
            fate: str | None = None
            if fault == "drop_after":
                fate = "dropped_after"
            elif fault in ("500", "502", "504") and self._plan.created_anyway():
                fate = "error_after_create"
            envelope = None
            if fault is None or fate is not None:
                envelope = self._created_envelope(self._make_task(now, model, body, fate))
            retry_after = self._retry_after() if fault == "429" else None
            return CreateDecision(fault, envelope, delay, retry_after)

    def decide_get(self, task_id: str, origin: str, model: str | None = None) -> GetDecision:
        """Draw this get's faults and answer from the task's state now.

        A task asked for at another model's path is not found there, as at the service.
        """
        with self._lock:
            now = self._clock()
            poll_fault = self._plan.poll_fault()
            delay = self._slow_delay()
            if poll_fault is not None:
                name = f"poll_{poll_fault}"
                self._faults[name] += 1
                return GetDecision(poll_fault, name, None, delay)
            task = self._tasks.get(task_id)
            if task is None or (model is not None and task.model != model):
                return GetDecision(404, None, {"detail": f"task {task_id} not found"}, delay)
            task.lookups += 1
            if task.lookups <= self.config.not_found_polls:
                self._faults["404_new_task"] += 1
                return GetDecision(404, "404_new_task", None, delay)
            return GetDecision(200, None, self._answer(task, now, origin), delay)

    def video_for(self, task_id: str) -> int | None:
        """The seconds of ``task_id``'s video when it has one to serve now (counting the
        download), else None."""
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None or self._phase(task, self._clock())[0] != "completed":
                return None
            if task.outcome != "completed":
                return None
            self._counts["downloads"] += 1
            return task.seconds

    # -- inside the lock ----------------------------------------------------------------------

    def _slow_delay(self) -> float:
        if self._plan.slow():
            self._faults["slow"] += 1
            return self.config.slow_seconds
        return 0.0

    def _limit(self, now: float) -> tuple[str, str] | None:
        limit = self.config.max_in_flight
        if limit is not None and self._in_flight(now) >= limit:
            return "limit_in_flight", f"concurrent task limit reached: {limit} tasks in flight"
        per_second = self.config.max_creates_per_second
        while self._accepted and self._accepted[0] <= now - 1.0:
            self._accepted.popleft()
        if per_second is not None and len(self._accepted) >= per_second:
            return "limit_per_second", f"task submission limit: {per_second} per second"
        return None

    def _retry_after(self) -> str:
        seconds = self.config.retry_after_seconds
        if self.config.retry_after_http_date:
            when = datetime.now(UTC) + timedelta(seconds=math.ceil(seconds))
            return when.strftime("%a, %d %b %Y %H:%M:%S GMT")
        return str(math.ceil(seconds))

    def _make_task(
        self, now: float, model: ModelSpec, body: dict[str, Any], fate: str | None
    ) -> _Task:
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        payload_hash = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
        if payload_hash in self._hashes:
            self._counts["duplicate_payloads"] += 1
        self._hashes.add(payload_hash)
        outcome = self._plan.outcome()
        traits = self._plan.traits()
        task = _Task(
            task_id=traits.task_id,
            model=model.name,
            seconds=int(body.get("duration", model.default_duration)),
            prompt=str(body.get("prompt", "")),
            payload_hash=payload_hash,
            fate=fate or outcome,
            outcome=outcome,
            vocabulary=traits.vocabulary,
            stamp_style=traits.stamp_style,
            error=traits.error,
            created=now,
            created_wall=datetime.now(UTC),
        )
        self._tasks[task.task_id] = task
        self._unfinished.add(task.task_id)
        self._accepted.append(now)
        self._max_per_second = max(self._max_per_second, len(self._accepted))
        self._max_in_flight = max(self._max_in_flight, self._in_flight(now))
        return task

    def _in_flight(self, now: float) -> int:
        done = {i for i in self._unfinished if self._phase(self._tasks[i], now)[0] in _ENDS}
        self._unfinished -= done
        return len(self._unfinished)

    def _phase(self, task: _Task, now: float) -> tuple[str, float]:
        pending_end = task.created + self.config.pending_seconds
        if now < pending_end:
            return "pending", task.created
        if self.config.hold and task.released is None:
            return "processing", pending_end
        end = max(pending_end + self.config.processing_seconds, task.released or 0.0)
        if now < end:
            return "processing", pending_end
        return ("failed" if task.outcome == "failed" else "completed"), end

    def _stamp(self, task: _Task, moment: float) -> str:
        wall = task.created_wall + timedelta(seconds=moment - task.created)
        if task.stamp_style == "z":
            return wall.strftime("%Y-%m-%dT%H:%M:%SZ")
        return wall.isoformat(timespec="microseconds")

    def _answer(self, task: _Task, now: float, origin: str) -> dict[str, Any]:
        phase, since = self._phase(task, now)
        info: dict[str, Any] = {
            "id": task.task_id,
            "status": status_word(phase, task.vocabulary),
            "created_at": self._stamp(task, task.created),
            "updated_at": self._stamp(task, since),
        }
        answer: dict[str, Any] = {"task_info": info}
        if phase == "failed":
            code, title, detail = task.error
            info["error"] = {"code": code, "title": title, "detail": detail}
        elif phase == "completed" and task.outcome == "completed":
            answer["videos"] = [f"{origin}/_sim/videos/{task.task_id}.mp4"]
        return answer

    def _describe(self, task: _Task, now: float) -> dict[str, Any]:
        phase, _ = self._phase(task, now)
        return {
            "id": task.task_id,
            "model": task.model,
            "seconds": task.seconds,
            "prompt": task.prompt,
            "payload_hash": task.payload_hash,
            "status": phase,
            "raw_status": status_word(phase, task.vocabulary),
            "fate": task.fate,
            "outcome": task.outcome,
            "vocabulary": task.vocabulary,
            "held": self.config.hold and task.released is None,
            "created_at": self._stamp(task, task.created),
        }

    def _created_envelope(self, task: _Task) -> dict[str, Any]:
        stamp = self._stamp(task, task.created)
        status = status_word("pending", task.vocabulary)
        return {
            "task_info": {
                "id": task.task_id,
                "status": status,
                "created_at": stamp,
                "updated_at": stamp,
            }
        }


_ENDS = frozenset({"completed", "failed"})

SIM_KEY = web.AppKey("simulator", Simulator)


def create_app(
    config: SimConfig, *, clock: Callable[[], float] = time.monotonic
) -> web.Application:
    """The simulator as an aiohttp application; its state is ``app[SIM_KEY]``."""
    sim = Simulator(config, clock=clock)
    app = build_app(sim)
    app[SIM_KEY] = sim
    return app


@dataclass(frozen=True)
class RunningSimulator:
    """A simulator listening on a socket."""

    base_url: str
    sim: Simulator
    host: str
    port: int


@contextlib.asynccontextmanager
async def serve(
    config: SimConfig,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[RunningSimulator]:
    """Serve the simulator on ``host:port`` (0: a free port) for the duration of the block.

    ``clock`` is for tests that step time by hand; it must be monotonic.
    """
    app = create_app(config, clock=clock)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        yield RunningSimulator(f"http://{shown}:{bound_port}", app[SIM_KEY], host, bound_port)
    finally:
        await runner.cleanup()


@contextlib.contextmanager
def serve_in_thread(
    config: SimConfig, host: str = "127.0.0.1", port: int = 0
) -> Iterator[RunningSimulator]:
    """Serve the simulator from its own event loop in a background thread."""
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        stop = asyncio.Event()
        box["loop"], box["stop"] = asyncio.get_running_loop(), stop
        try:
            async with serve(config, host, port) as running:
                box["running"] = running
                ready.set()
                await stop.wait()
        except Exception as exc:  # handed to the caller's thread below
            box["error"] = exc
            ready.set()

    thread = threading.Thread(target=lambda: asyncio.run(main()), name="simulator", daemon=True)
    thread.start()
    if not ready.wait(timeout=30):
        raise RuntimeError("the simulator did not start within 30 s")
    if "error" in box:
        thread.join(timeout=5)
        raise box["error"]
    try:
        yield box["running"]
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(timeout=30)
