"""The provider seam: what every provider (MuleRouter today, DashScope later) must answer.

A provider knows its envelope and nothing about sockets: how to build the create and status
requests for a row's body and model, how to read a task out of a decoded answer, and how to turn
a refusal into the error tree of ``batchwan.errors``. The transport (``transport.py``) sends what
it builds; downloads (``downloads.py``) fetch what it parses.

Everything a server says is hostile until checked. The checks shared by every provider live here:
task ids, provider text, nesting depth of a decoded answer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from batchwan.errors import ApiError
from batchwan.safe_text import one_line
from batchwan.values import TaskInfo

Operation = Literal["create", "get", "download"]

#: The longest task id kept; real ones are UUIDs (36 characters).
TASK_ID_LIMIT = 128
#: Provider text (error details, statuses) is cut to this many characters.
TEXT_LIMIT = 300
#: Deeper answers are refused unread: no envelope needs more than a few levels.
DEPTH_LIMIT = 32

# A task id goes into URL paths, file names and logs: plain characters only, and never a
# leading dot (so neither "." nor ".." nor a hidden file).
_TASK_ID = re.compile(rf"[A-Za-z0-9_][A-Za-z0-9._:-]{{0,{TASK_ID_LIMIT - 1}}}")
# Terminal escape sequences (CSI, OSC) first, then any single control or format character.


@dataclass(frozen=True)
class Request:
    """One call to the provider's API, relative to its base URL."""

    method: str
    path: str  # already percent-encoded
    json: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


class Provider(Protocol):
    """One provider's envelope: requests out, tasks and errors in."""

    name: str

    def create_request(self, body: Mapping[str, Any], model: str) -> Request:
        """The request that submits one generation of ``model`` with the API fields ``body``."""
        ...

    def status_request(self, task_id: str, model: str) -> Request:
        """The request that looks up one task (``task_id`` already checked)."""
        ...

    def parse_task(self, data: Any, *, trace_id: str | None) -> TaskInfo | None:
        """The task in a decoded 2xx answer; None when it names no usable task.

        Raises ``BadAnswer`` when the answer names a task whose id cannot be used safely.
        """
        ...

    def classify(
        self,
        op: Operation,
        status: int,
        raw: bytes,
        headers: Mapping[str, str],
        *,
        task_id: str | None,
        where: str,
    ) -> ApiError:
        """The error of the tree for a non-2xx answer (or a 2xx that means failure)."""
        ...

    def trace_id(self, headers: Mapping[str, str]) -> str | None:
        """The id the provider asks users to quote in bug reports, when it sent one."""
        ...


def clean_text(value: object, limit: int = TEXT_LIMIT) -> str:
    """Provider text made safe to print and store: no escapes or control characters, one line.

    A server can put anything in an error detail; printed raw, an escape sequence rewrites the
    user's terminal and a newline forges a log line.
    """
    return one_line(value, limit)


def checked_task_id(value: object) -> str | None:
    """``value`` as a task id when it is a safe one; None otherwise."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value)
    return text if _TASK_ID.fullmatch(text) else None


def too_deep(data: Any, limit: int = DEPTH_LIMIT) -> bool:
    """True when ``data`` nests lists or mappings more than ``limit`` levels (no recursion)."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return False
