"""Plain values that flow from one stage to the next."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from batchwan.catalog.registry import DEFAULT_MODEL as DEFAULT_MODEL  # re-exported
from batchwan.catalog.registry import REGISTRY, duration_of, resolution_of
from batchwan.catalog.spec import ALL_FIELDS

#: The fields of the create call of any model; a sheet column with one of these names is sent.
API_FIELDS: tuple[str, ...] = ALL_FIELDS

DEFAULT_BASE_URL = "https://api.mulerouter.ai"

#: USD per second of output video, by resolution, of the default model (see batchwan.catalog).
DEFAULT_PRICES: dict[str, float] = {
    tier: price for tier, price in REGISTRY[DEFAULT_MODEL].prices.items() if price is not None
}


class Status(StrEnum):
    """A row's status, as ``results.csv`` spells it."""

    INVALID = "invalid"
    DUPLICATE = "duplicate"
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNKNOWN = "unknown"


class TaskState(StrEnum):
    """A provider task's state, with the provider's two vocabularies folded into one."""

    IN_PROGRESS = "in_progress"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


#: Rows whose cost is committed: sent and not failed (an `unknown` one may have been billed).
COMMITTED = frozenset({Status.RUNNING, Status.SUCCEEDED, Status.UNKNOWN})


@dataclass(frozen=True, slots=True)  # slots: a big sheet holds a million of these
class SheetRow:
    """One data row as read from a sheet, cells exactly as the user typed them."""

    position: int  # 1-based among the sheet's data rows
    cells: dict[str, str]
    read_error: str | None = None  # a line that could not be parsed is a problem of this row
    line: int | None = None  # the row's number as the spreadsheet program shows it


@dataclass(frozen=True)
class RowIssue:
    """One problem of one row, in words a person can act on."""

    row: int
    column: str
    message: str
    fixable: bool = False  # --fix-images would mend it
    line: int | None = None  # the row's number as the spreadsheet program shows it

    def __str__(self) -> str:
        where = f"row {self.row}"
        # Shown where it says more than the row number: after title, blank or hidden rows,
        # cells spanning lines, blank JSONL lines, YAML items (not the row itself, or the
        # row after a one-line header).
        if self.line is not None and self.line not in (self.row, self.row + 1):
            where += f" (sheet line {self.line})"
        if not self.column:  # a problem of the whole row, e.g. a duplicate
            return f"{where}: {self.message}"
        return f"{where}: {self.column}: {self.message}"


@dataclass(frozen=True, slots=True)  # slots: a big sheet holds a million of these
class CheckedRow:
    """A row after validation: either a request ready to send, or its issues."""

    position: int
    key: str  # the ledger's key: the sheet's id, else a hash of the request content
    row_id: str  # what results.csv shows in `id`
    status: Status  # PENDING (valid), INVALID or DUPLICATE
    request: dict[str, Any]  # the JSON body, except a local image stays a path (see image_path)
    image_path: Path | None  # a local image, read and sent as base64 only at submit time
    content_hash: str  # hash of the full request content, a local image's bytes included
    issues: tuple[RowIssue, ...] = ()
    notes: tuple[str, ...] = ()  # what was done to the row, e.g. an image fixed
    extra: dict[str, str] = field(default_factory=dict)  # the user's own columns, unchanged
    own_id: bool = False  # row_id is the sheet's id, not a key derived from the content
    model: str = DEFAULT_MODEL  # the Wan model this row is sent to
    line: int | None = None  # the row's number as the spreadsheet program shows it
    last_frame_path: Path | None = None  # a local last frame, like image_path

    @property
    def resolution(self) -> str:
        """The resolution tier this row renders at (a text model's size counts as its tier)."""
        return resolution_of(self.model, self.request)

    @property
    def duration(self) -> int:
        """Seconds of video this row asks for (its model's default when unset)."""
        return duration_of(self.model, self.request)


@dataclass(frozen=True)
class ProviderError:
    """The provider's own account of why a task failed."""

    code: int | str | None
    title: str | None
    detail: str | None

    def __str__(self) -> str:
        parts = [str(p) for p in (self.code, self.title, self.detail) if p not in (None, "")]
        return " ".join(parts) if parts else "no detail given"


@dataclass(frozen=True)
class TaskInfo:
    """A provider task as one create or get call reported it."""

    task_id: str
    state: TaskState
    raw_status: str
    created_at: datetime | None = None
    updated_at: datetime | None = None
    videos: tuple[str, ...] = ()
    error: ProviderError | None = None
    trace_id: str | None = None


@dataclass(frozen=True)
class JobSpec:
    """How to read a sheet and run it: a job file, or a bare sheet with the defaults."""

    sheet: Path
    columns: dict[str, str] = field(default_factory=dict)  # API field -> the sheet's column
    defaults: dict[str, Any] = field(default_factory=dict)  # API field -> value for empty cells
    model: str = DEFAULT_MODEL
    out: Path | None = None
    concurrency: int = 2
    rate: float = 2.0
    poll_interval: float = 20.0
    max_cost: float | None = None
    prices: dict[str, float] = field(default_factory=dict)  # resolution -> USD/s, every model
    # Settings of the second version; each one is read by the stage that uses it.
    image_root: Path | None = None  # where bare image file names are found, and confined to
    tab: str | None = None  # the worksheet of an .xlsx to read
    include_hidden: bool = False  # also send rows hidden or filtered out in the workbook
    encoding: str | None = None  # force the sheet's text encoding instead of detecting it
    delimiter: str | None = None  # force the CSV separator instead of detecting it
    limit: int | None = None  # send at most this many new rows in this run
    allow_repeat: bool = False  # send a request already accepted from another run folder
    group_by: tuple[str, ...] = ()  # the sheet's own columns that results are broken down by
    store: str | None = None  # where the record is kept; None: the run folder's state.db
    model_prices: dict[str, dict[str, float]] = field(default_factory=dict)  # one model's prices


@dataclass(frozen=True)
class RowRecord:
    """One row of the run's durable record, as results, status and the report read it."""

    position: int
    key: str
    row_id: str
    status: Status
    cost: float  # estimated USD for this row
    resolution: str
    duration: int
    prompt: str
    image: str  # as the sheet gave it: URL, data: URI or local path
    task_id: str | None = None
    video_url: str | None = None
    video_file: str | None = None  # relative to the run folder
    error: str | None = None
    attempts: int = 0
    submitted_at: datetime | None = None
    finished_at: datetime | None = None
    extra: dict[str, str] = field(default_factory=dict)
    model: str = ""
    request: dict[str, Any] = field(default_factory=dict)  # as sent; the image as the sheet gave it
    line: int | None = None  # the row's number as the spreadsheet program shows it


@dataclass(frozen=True)
class RunLine:
    """One invocation of `run` on a run folder: when, and what it sent and collected."""

    number: int
    started_at: datetime
    ended_at: datetime | None
    sent: int  # create requests sent during this invocation
    collected: int  # rows that reached succeeded or failed during this invocation
