"""The simulator's seeded decisions: which request gets which fault, and how each task ends.

Each kind of decision draws from its own ``random.Random`` stream, all derived from the one
seed, with a fixed number of draws per event, so one setting never shifts another's sequence
and a test can predict every count exactly:

=================  ==========================  =============================================
stream             seeded with                 draws
=================  ==========================  =============================================
create faults      ``seed``                    one per authorized, valid create (bands below)
created anyway     ``f"{seed}:created"``       one per 500/502/504 create fault
fate               ``f"{seed}:fate"``          one per created task: failed, no video, else ok
task traits        ``f"{seed}:task"``          four per created task: id, vocabulary, time
                                               format, error code
slow               ``f"{seed}:slow"``          one per create and per authorized get
poll faults        ``f"{seed}:poll"``          one per authorized get, plus one to pick 500 or
                                               503 when it faults
=================  ==========================  =============================================

A create's single draw ``u`` falls into consecutive bands, in this order: 429 with Retry-After,
429 without, 500, 502, 503, 504, dropped before, dropped after; past them the create succeeds.
So with only ``rate_503=0.3`` set, the creates answered 503 are exactly those whose draw from
``random.Random(seed)`` is below 0.3.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from batchwan.sim.simulator import SimConfig

#: Create faults in band order; each maps to the SimConfig field holding its rate.
CREATE_FAULTS: tuple[tuple[str, str], ...] = (
    ("429", "rate_429"),
    ("429_bare", "rate_429_bare"),
    ("500", "rate_500"),
    ("502", "rate_502"),
    ("503", "rate_503"),
    ("504", "rate_504"),
    ("drop_before", "drop_before_rate"),
    ("drop_after", "drop_after_rate"),
)

#: Every name that the stats' ``faults`` mapping counts.
FAULT_NAMES: tuple[str, ...] = (
    *(name for name, _ in CREATE_FAULTS),
    "limit_in_flight",
    "limit_per_second",
    "slow",
    "404_new_task",
    "poll_500",
    "poll_503",
)

#: How a failed task explains itself; 3005 is the content-moderation refusal seen in the wild.
TASK_ERRORS: tuple[tuple[int, str, str], ...] = (
    (3001, "Task Execution Error", "Video generation failed: Invalid image dimensions"),
    (3002, "Task Execution Error", "Video generation failed: upstream timed out"),
    (3003, "Task Execution Error", "Video generation failed: upstream service error"),
    (3004, "Task Execution Error", "Video generation failed: output could not be encoded"),
    (3005, "Task Execution Error", "prompt violation"),
)

_ALIBABA_WORDS = {
    "pending": "queued",
    "processing": "running",
    "completed": "succeeded",
    "failed": "failed",
}


@dataclass(frozen=True)
class TaskTraits:
    """What the task stream decides about a new task."""

    task_id: str
    vocabulary: str  # "mulerouter" or "alibaba"
    stamp_style: str  # "z" (2023-11-07T05:31:56Z) or "micro" (...56.657134+00:00)
    error: tuple[int, str, str]


class FaultPlan:
    """The seeded streams; not thread-safe, so the simulator calls it under its lock."""

    def __init__(self, config: SimConfig) -> None:
        self._config = config
        seed = config.seed
        self._create = random.Random(seed)
        self._created = random.Random(f"{seed}:created")
        self._fate = random.Random(f"{seed}:fate")
        self._task = random.Random(f"{seed}:task")
        self._slow = random.Random(f"{seed}:slow")
        self._poll = random.Random(f"{seed}:poll")
        self._rejected = random.Random(f"{seed}:rejected")

    def create_fault(self) -> str | None:
        """The fault for one create, or None to accept it (one draw, always taken)."""
        draw = self._create.random()
        edge = 0.0
        for name, field in CREATE_FAULTS:
            edge += float(getattr(self._config, field))
            if draw < edge:
                return name
        return None

    def created_anyway(self) -> bool:
        """Whether a create answered 500/502/504 had created its task before failing."""
        return self._created.random() < self._config.error_after_create_rate

    def outcome(self) -> str:
        """How a new task ends: "failed", "no_video" or "completed"."""
        draw = self._fate.random()
        if draw < self._config.fail_rate:
            return "failed"
        if draw < self._config.fail_rate + self._config.no_video_rate:
            return "no_video"
        return "completed"

    def traits(self) -> TaskTraits:
        """Id, status vocabulary, timestamp format and failure reason of a new task."""
        task_id = str(uuid.UUID(int=self._task.getrandbits(128), version=4))
        vocab_draw, stamp_draw = self._task.random(), self._task.random()
        error = TASK_ERRORS[self._task.randrange(len(TASK_ERRORS))]
        vocabulary = self._config.status_vocabulary
        if vocabulary == "mixed":
            vocabulary = "alibaba" if vocab_draw < 0.5 else "mulerouter"
        return TaskTraits(task_id, vocabulary, "z" if stamp_draw < 0.5 else "micro", error)

    def rejected_id(self) -> str:
        """A task id for the failed envelope of a 400."""
        return str(uuid.UUID(int=self._rejected.getrandbits(128), version=4))

    def slow(self) -> bool:
        """Whether this answer is delayed by ``slow_seconds``."""
        return self._slow.random() < self._config.slow_rate

    def poll_fault(self) -> int | None:
        """500 or 503 for a get that fails at random, else None."""
        if self._poll.random() >= self._config.poll_fault_rate:
            return None
        return 500 if self._poll.random() < 0.5 else 503


def status_word(phase: str, vocabulary: str) -> str:
    """The status a task in ``phase`` shows in its vocabulary."""
    return _ALIBABA_WORDS[phase] if vocabulary == "alibaba" else phase


def fault_body(name: str) -> tuple[int, Any]:
    """HTTP status and body for an injected fault; bodies vary in shape as the service's do.

    A ``str`` body is sent as HTML (not JSON), like a gateway's error page.
    """
    bodies: dict[str, tuple[int, Any]] = {
        "429": (429, {"error": {"code": 429, "message": "Rate limit exceeded, retry later"}}),
        "429_bare": (429, {"message": "Too many requests"}),
        "500": (500, {"error": "internal server error"}),
        "502": (502, "<html><body><h1>502 Bad Gateway</h1></body></html>"),
        "503": (503, {"message": "service temporarily unavailable"}),
        "504": (504, {"detail": "upstream request timed out"}),
        "poll_500": (
            500,
            {"error": {"code": 4008, "title": "Service Error", "detail": "task lookup failed"}},
        ),
        "poll_503": (503, {"message": "service temporarily unavailable"}),
        "404_new_task": (404, {"detail": "task not found"}),
    }
    return bodies[name]
