"""The exit codes that scripts and cron jobs rely on, and the one place that picks them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from batchwan.errors import (
    AccountError,
    BudgetExceeded,
    DiskFull,
    InputError,
    RunLocked,
    StateError,
)
from batchwan.values import Status

if TYPE_CHECKING:
    from batchwan.pipeline import RunResult
    from batchwan.values import CheckedRow

OK = 0
ROWS_NEED_ATTENTION = 1
CANNOT_START = 2
RUN_LOCKED = 3
STOPPED_EARLY = 4
INTERRUPTED = 130

_NEEDS_ATTENTION = (Status.INVALID, Status.DUPLICATE, Status.FAILED, Status.UNKNOWN, Status.PENDING)


def for_error(exc: BaseException) -> int | None:
    """The code for an error a person can act on; None for a bug (it keeps its traceback)."""
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED
    if isinstance(exc, RunLocked):
        return RUN_LOCKED
    if isinstance(exc, DiskFull):  # the run did start: what it sent is kept, rows need attention
        return ROWS_NEED_ATTENTION
    if isinstance(exc, AccountError | BudgetExceeded):
        return STOPPED_EARLY
    if isinstance(exc, InputError | StateError):
        return CANNOT_START
    return None


def for_checked(rows: Sequence[CheckedRow]) -> int:
    """`validate` and `run --dry-run`: 0 when every row is valid, 1 otherwise."""
    bad = any(row.status is not Status.PENDING for row in rows)
    return ROWS_NEED_ATTENTION if bad else OK


def for_run(result: RunResult, *, wait: bool, download: bool) -> int:
    """The code for a run that got to the end (or was stopped)."""
    from batchwan.pool.runner import StopReason

    if result.outcome.stop is StopReason.INTERRUPTED:
        return INTERRUPTED
    if result.outcome.stop in (StopReason.ACCOUNT, StopReason.BUDGET):
        return STOPPED_EARLY
    records = result.records
    if result.rows_changed or any(r.status in _NEEDS_ATTENTION for r in records):
        return ROWS_NEED_ATTENTION
    if wait and any(r.status is Status.RUNNING for r in records):
        return ROWS_NEED_ATTENTION
    if (
        wait
        and download
        and any(r.status is Status.SUCCEEDED and not r.video_file for r in records)
    ):
        return ROWS_NEED_ATTENTION
    return OK
