"""The store seam: what the pipeline, the runner and the readers need of a run's record.

Two implementations: ``sqlite.SqliteStore`` (state.db in the run folder, one runner) and
``postgres.PostgresStore`` (a shared database, any number of runners on one run). Both keep the
same promises: a row is marked "sending" durably, atomically with the budget check, before its
create goes out; a task id is durable before anything else happens to the row; the in-memory
view changes only after the write that it reflects has been committed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from batchwan.pool.limits import CreateWindow, InFlight
from batchwan.store.records import Snapshot
from batchwan.store.schema import TaskEntry
from batchwan.values import CheckedRow, RowRecord, Status


class Claim(StrEnum):
    """What ``begin_create`` decided for a row."""

    SENDING = "sending"  # marked durably: send the create now
    BUDGET = "budget"  # sending it would take the run over --max-cost
    TAKEN = "taken"  # not pending any more (another runner has it, or it is done)


class Store(Protocol):
    """A run's durable record, as one runner uses it."""

    run_dir: Path
    meta: dict[str, str]

    def close(self) -> None:
        """Flush and close the record (and release what this runner held)."""
        ...

    # -- the start of a run (synchronous: nothing else is running yet) --------------------------

    def claim(
        self,
        sheet: Path,
        model: str,
        max_cost: float | None = None,
        keys: Sequence[str] | None = None,
    ) -> None:
        """Tie the record to its sheet, recognised by its rows; refuse another sheet."""
        ...

    def sync_sheet(
        self, rows: Sequence[CheckedRow], costs: Sequence[float], extra_columns: Sequence[str]
    ) -> list[str]:
        """Record the sheet as read now, writing only what changed; warnings to show."""
        ...

    def recover(self, *, resubmit_unknown: bool, retry_failed: bool) -> int:
        """Settle what a crash left half-done; how many rows were caught mid-send."""
        ...

    def set_meta(self, name: str, value: str) -> None:
        """Keep one setting of the run in the record's meta (e.g. its --group-by)."""
        ...

    def begin_run(self, options: dict[str, Any]) -> int:
        """Open this invocation's line in the record."""
        ...

    def end_run(self, number: int, *, sent: int, collected: int) -> None:
        """Close this invocation's line."""
        ...

    def limits(self, concurrency: int, rate: float) -> tuple[InFlight, CreateWindow]:
        """The tasks-in-flight and create-rate limits, counted where the record is shared."""
        ...

    def more_to_follow(self, *, downloads: bool = False) -> bool | None:
        """After a pass of the pool: True to go round again for tasks taken over from runners
        that stopped, None to ask again soon (other runners still have tasks open, or, with
        ``downloads``, videos still being fetched), False when the run has nothing open."""
        ...

    # -- transitions during a run (each one durable before it returns) --------------------------

    async def begin_create(self, key: str, *, max_cost: float | None = None) -> Claim:
        """Mark a row as being sent, if it is pending and the budget allows it."""
        ...

    async def create_accepted(self, key: str, task_id: str) -> None:
        """Record the provider's task id: the row is running and never sent again."""
        ...

    async def create_settled(self, key: str, status: Status, error: str | None) -> None:
        """The create ended without a task: pending (retry later), failed or unknown."""
        ...

    async def settle_pending(self, keys: Iterable[str], error: str) -> None:
        """Give every still-pending row among ``keys`` the same reason."""
        ...

    async def task_finished(
        self, key: str, status: Status, *, video_url: str | None = None, error: str | None = None
    ) -> None:
        """The provider says the task ended."""
        ...

    async def note(self, key: str, error: str | None, *, video_file: str | None = None) -> None:
        """Record a remark on a row, or its downloaded video."""
        ...

    # -- reading ---------------------------------------------------------------------------------

    def entry(self, key: str) -> TaskEntry:
        """A copy of what the record knows of one row key."""
        ...

    def status(self, key: str) -> Status:
        """The newest status of one row key, without copying its entry."""
        ...

    def tasks_to_follow(self, *, downloads: bool = True) -> list[TaskEntry]:
        """Rows this runner should poll (running) or, with ``downloads``, download (succeeded),
        as copies."""
        ...

    def video_files(self) -> set[str]:
        """Every video file name some row of the run has been given (never given twice)."""
        ...

    def tally(self) -> tuple[int, int]:
        """(create requests sent, rows finished) over the run's life."""
        ...

    def committed_cost(self) -> float:
        """USD of every create that was or may have been billed, over the run's life."""
        ...

    def take_changed(self) -> set[str] | None:
        """Row keys whose entries changed since the last call (None: any may have, e.g. by
        another runner of a shared run), for refreshes that rebuild only what changed."""
        ...

    def snapshot(self) -> Snapshot:
        """A copy of what the record knows now, safe to read from another thread."""
        ...

    def records(self) -> list[RowRecord]:
        """The sheet's rows with what the record knows of each, in sheet order."""
        ...
