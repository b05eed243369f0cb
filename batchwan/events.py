"""Progress of a run as typed events, for whoever shows it (the CLI's bars, a notebook, a log).

The core calls ``on_event(event)`` on its own thread, in order, and never waits for an answer: a
slow callback slows the run, a failing one is logged and ignored (it must not lose a run).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from batchwan.pool.runner import RunEvent
from batchwan.values import Status


@dataclass(frozen=True)
class RunStarted:
    """The run folder is locked and its record is up to date; ``to_follow`` rows are in play."""

    run_dir: Path
    rows: int
    to_follow: int  # rows to send now, plus rows sent earlier and still running
    warnings: tuple[str, ...] = ()  # what reading the sheet into the record found (changed rows)


@dataclass(frozen=True)
class RowsChecked:
    """Every row of the source was read and checked."""

    rows: int
    valid: int
    invalid: int
    duplicate: int


@dataclass(frozen=True)
class RowAccepted:
    """The provider accepted a row's create and gave it a task id."""

    row: int | None
    message: str


@dataclass(frozen=True)
class RowFinished:
    """A row reached ``succeeded``, ``failed`` or ``unknown``."""

    row: int | None
    status: Status
    message: str


@dataclass(frozen=True)
class RowDownloaded:
    """A row's video was saved in the run folder."""

    row: int | None
    message: str


@dataclass(frozen=True)
class Stopping:
    """A stop was asked for: no new creates; what is on the wire is being recorded."""

    reason: str


@dataclass(frozen=True)
class RunEnded:
    """The pool is done and the results are written (``stop`` says why it ended early)."""

    run_dir: Path
    counts: dict[str, int]
    stop: str | None
    warnings: tuple[str, ...] = ()  # what the user should know (the CLI prints these)


Event = RunStarted | RowsChecked | RowAccepted | RowFinished | RowDownloaded | Stopping | RunEnded

# The pool's messages name the row first ("row 7: ...") and its videos are "videos/<row>-...".
_ROW = re.compile(r"^(?:row |videos/)(\d+)\b")


def from_runner(event: RunEvent) -> Event | None:
    """The typed event for one of the pool's own events (None for a kind it does not know)."""
    found = _ROW.match(event.message)
    row = int(found.group(1)) if found else None
    if event.kind == "submitted":
        return RowAccepted(row, event.message)
    if event.kind == "finished" and event.status is not None:
        return RowFinished(row, event.status, event.message)
    if event.kind == "downloaded":
        return RowDownloaded(row, event.message)
    return None
