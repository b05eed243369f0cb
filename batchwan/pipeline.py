"""One run from source to results: validate, plan, lock, record, pool, results, report.

The one entry point that the command line and the Python API share. ``prepare`` reads and checks
the source (no run folder is touched); ``Pipeline.run`` does the rest under the run folder's
lock and reports progress as the typed events of ``batchwan.events``. Nothing here prints,
exits, reads the environment or changes process-wide state: that is the caller's to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchwan import events, sources
from batchwan.errors import InputError
from batchwan.pool.runner import RunEvent, Runner, RunOptions, RunOutcome, StopReason
from batchwan.pricing import price_book
from batchwan.store.base import Store
from batchwan.store.runlock import RunLock
from batchwan.store.sqlite import refuse_lost_record
from batchwan.values import DEFAULT_BASE_URL, CheckedRow, JobSpec, RowRecord, Status

if TYPE_CHECKING:
    from batchwan.plan import Plan
    from batchwan.pool.refresh import FreshRecords
    from batchwan.provider.transport import Limits
    from batchwan.sheet.loader import Sheet, SheetStream

log = logging.getLogger(__name__)

#: What a run writes into its folder; a sheet must never be one of them.
RUN_FILES = ("results.csv", "results.xlsx", "summary.json", "report.html", "run.log", "state.db")

#: The simulator renders in about two seconds; the provider's 20 s pace would only make it wait.
SIMULATOR_POLL_INTERVAL = 0.2
_PROVIDER_POLL_INTERVAL = JobSpec(sheet=Path("-")).poll_interval


@dataclass(frozen=True)
class RunSettings:
    """How to run, beyond the job spec: the provider, and what to do along the way."""

    base_url: str = DEFAULT_BASE_URL
    api_key: str | None = None
    simulate: bool = False
    wait: bool = True
    download: bool = True
    resubmit_unknown: bool = False
    retry_failed: bool = False
    fix_images: bool = False
    xlsx: bool = False
    task_deadline: float = 3600.0
    limits: Limits | None = None  # deadlines and size caps of every call; None: the defaults
    new_record: bool = False  # start a new record where a past run's state.db is gone
    default_store: str | None = None  # the store when neither the option nor the job names one
    poll_rate: float = 20.0  # most status lookups per second, across all tasks


@dataclass(frozen=True)
class Prepared:
    """A source read and checked: the spec, the run folder, the rows and the user's columns."""

    spec: JobSpec
    run_dir: Path
    rows: list[CheckedRow]
    extra_columns: list[str]
    notes: tuple[str, ...] = ()  # what was guessed in reading it (encoding, headers), said once


@dataclass(frozen=True)
class RunResult:
    """How a run ended, with every row's record as it stands now."""

    run_dir: Path
    records: list[RowRecord]
    outcome: RunOutcome
    warnings: tuple[str, ...] = ()  # found when the record was updated: lost answers, changed rows
    problems: tuple[str, ...] = ()  # found at the end: results or report not written
    rows_changed: bool = False  # a row changed under an id that was already sent


class Phase(StrEnum):
    """Where a pipeline is, so that a stop is answered truthfully."""

    READY = "ready"  # nothing opened, nothing sent
    STARTING = "starting"  # the run folder is locked, the record is being brought up to date
    POOL = "pool"  # creates may be on the wire
    FINISHING = "finishing"  # the pool is done; results and report are being written
    DONE = "done"


def prepare(
    source: Any,
    overrides: Mapping[str, Any],
    *,
    simulate: bool = False,
    fix_images: bool = False,
    settings: RunSettings | None = None,
) -> Prepared:
    """Read and check ``source`` with ``overrides`` on top of its job file; writes nothing.

    With ``fix_images``, fixable images are fixed into the run folder's ``fixed-images``. With
    ``settings``, rows already sent from another run folder on this machine are held back.
    """
    spec, sheet = sources.load_spec(source, overrides)
    # Neither the option nor the job file chose a pace: take the simulator's.
    unset = spec.poll_interval == _PROVIDER_POLL_INTERVAL
    if simulate and overrides.get("poll_interval") is None and unset:
        spec = dataclasses.replace(spec, poll_interval=SIMULATOR_POLL_INTERVAL)
    run_dir = spec.out or Path("runs") / spec.sheet.stem
    if not sources.is_table(source):
        refuse_to_overwrite(run_dir, Path(source), spec.sheet)
    table = sources.read_rows(spec, sheet)
    fix_dir = run_dir / "fixed-images" if fix_images else None
    rows = sources.check(spec, table, fix_dir)
    return _prepared(spec, run_dir, rows, table, settings)


def check_source(
    source: Any,
    overrides: Mapping[str, Any],
    *,
    fix_images: bool,
    settings: RunSettings | None = None,
) -> Prepared:
    """Read and check ``source``; fixed images go to a folder removed at once. Writes nothing."""
    spec, sheet = sources.load_spec(source, overrides, needs_out=False)
    run_dir = spec.out or Path("runs") / spec.sheet.stem
    table = sources.read_rows(spec, sheet)
    if fix_images:
        with sources.scratch_fix_dir() as scratch:
            rows = sources.check(spec, table, scratch)
    else:
        rows = sources.check(spec, table, None)
    return _prepared(spec, run_dir, rows, table, settings)


def _sheet_checks(
    spec: JobSpec, table: Sheet | SheetStream, settings: RunSettings | None
) -> tuple[JobSpec, list[str], tuple[str, ...]]:
    """The spec with its store settled, the user's own columns, and what was guessed; InputError
    for a store or --group-by the source cannot have."""
    from batchwan.outputs.groups import check_group_by

    if settings is not None and spec.store is None and settings.default_store:
        spec = dataclasses.replace(spec, store=settings.default_store)
    if spec.store:  # the database driver is imported only for a run that names a store
        from batchwan.store.choose import check_store

        check_store(spec.store)
    own, notes = sources.own_columns(spec, table)
    check_group_by(spec.group_by, own)
    return spec, own, notes


def _prepared(
    spec: JobSpec,
    run_dir: Path,
    rows: list[CheckedRow],
    table: Sheet,
    settings: RunSettings | None,
) -> Prepared:
    """The checked source, once its --group-by columns are known to be among its own, with
    rows already sent from another run folder held back (see ``store.repeats``)."""
    spec, own, notes = _sheet_checks(spec, table, settings)
    # A shared run's store sends each row once across all its runners; the machine's index of
    # sends keeps run folders with their own record from repeating each other.
    repeats_apply = not (spec.allow_repeat or spec.store)
    if settings is not None and settings.api_key and not settings.simulate and repeats_apply:
        from batchwan.store.repeats import hold_for_run

        rows = hold_for_run(rows, run_dir, settings.base_url, settings.api_key)
    return Prepared(spec, run_dir, rows, own, notes)


@dataclass(frozen=True)
class CheckedStream:
    """A source whose rows are checked as they are read: taken once, never all held at once."""

    spec: JobSpec
    rows: Iterator[CheckedRow]
    notes: tuple[str, ...] = ()  # what was guessed in reading it (encoding, headers), said once


@contextlib.contextmanager
def stream_source(
    source: Any, overrides: Mapping[str, Any], *, fix_images: bool
) -> Iterator[CheckedStream]:
    """``check_source`` for `validate`: what refuses the whole source is raised at once, the
    rows are checked while they are taken. Fixed images go to a folder removed at the end."""
    spec, sheet = sources.load_spec(source, overrides, needs_out=False)
    table = sources.open_rows(spec, sheet)
    with contextlib.ExitStack() as stack:
        from batchwan.sheet.loader import RowStream

        if isinstance(table.rows, RowStream):  # read to its end or not, the file is closed
            stack.callback(table.rows.close)
        scratch = stack.enter_context(sources.scratch_fix_dir()) if fix_images else None
        rows = sources.check_each(spec, table, scratch)
        spec, _own, notes = _sheet_checks(spec, table, None)
        yield CheckedStream(spec, rows, notes)


def prepare_dry(
    source: Any,
    overrides: Mapping[str, Any],
    *,
    fix_images: bool,
    settings: RunSettings | None = None,
) -> Prepared:
    """What ``run --dry-run`` plans from: ``check_source``, refusing what ``run`` refuses."""
    prepared = check_source(source, overrides, fix_images=fix_images, settings=settings)
    if not sources.is_table(source):
        refuse_to_overwrite(prepared.run_dir, Path(source), prepared.spec.sheet)
    return prepared


def refuse_to_overwrite(run_dir: Path, *given: Path) -> None:
    """A run folder whose results would replace the sheet (or job file) itself is refused."""
    outputs = {(run_dir / name).resolve() for name in RUN_FILES}
    for path in given:
        if path.resolve() in outputs:
            raise InputError(
                f"{path} would be overwritten by the run's own {path.name}; choose another --out"
            )


def dry_plan(prepared: Prepared, settings: RunSettings) -> tuple[Plan, list[str]]:
    """The plan of what a run would send and cost, and what it would warn of, from the run
    folder's record if any, read as `run` reads it (the same sheet check, the same committed
    cost)."""
    from batchwan.plan import make_plan
    from batchwan.store.records import check_sheet, has_record, read_committed_cost, read_records

    spec = prepared.spec
    refuse_lost_record(prepared.run_dir, new_record=settings.new_record, store=spec.store)
    existing: dict[str, Status] = {}
    committed = 0.0
    warnings: list[str] = []
    if has_record(prepared.run_dir):
        keys = [row.key for row in prepared.rows]
        if warning := check_sheet(prepared.run_dir, spec.sheet, keys):
            warnings.append(warning)
        for record in read_records(prepared.run_dir):
            existing[record.key] = record.status
        committed = read_committed_cost(prepared.run_dir)
    plan = make_plan(
        prepared.rows, existing, prices=price_book(spec), concurrency=spec.concurrency,
        rate=spec.rate,
        max_cost=spec.max_cost, committed=committed, retry_failed=settings.retry_failed,
        resubmit_unknown=settings.resubmit_unknown,
    )  # fmt: skip
    return plan, warnings


def checked_event(rows: Sequence[CheckedRow]) -> events.RowsChecked:
    """The RowsChecked event for a list of checked rows."""
    counts = Counter(row.status for row in rows)
    return events.RowsChecked(
        len(rows), counts[Status.PENDING], counts[Status.INVALID], counts[Status.DUPLICATE]
    )


class Pipeline:
    """Runs one prepared source to the end; ``stop`` and ``cancel`` may come from any thread."""

    def __init__(
        self,
        prepared: Prepared,
        settings: RunSettings,
        *,
        on_event: Callable[[events.Event], None] | None = None,
    ) -> None:
        self.prepared = prepared
        self.settings = settings
        self.phase = Phase.READY
        self.on_event = on_event  # called on the loop's thread, in order
        self._lock = threading.Lock()
        self._stop_asked = False
        self._cancel_asked = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: Runner | None = None
        self._pool: asyncio.Task[RunOutcome] | None = None
        self._sendable: list[CheckedRow] = []  # the valid rows the pool may send

    # -- control: safe to call from a signal handler or another thread ---------------------------

    def stop(self) -> None:
        """Send no new creates; record what is on the wire, then end (the next run collects)."""
        with self._lock:
            self._stop_asked = True
            loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between: nothing to stop
                loop.call_soon_threadsafe(self._stop_in_loop)

    def cancel(self) -> None:
        """End the pool now, without waiting for creates on the wire (they become `unknown`)."""
        with self._lock:
            self._stop_asked = self._cancel_asked = True
            loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._cancel_in_loop)

    def _stop_in_loop(self) -> None:
        if self._runner is not None and self.phase is Phase.POOL:
            self._emit(events.Stopping("interrupted"))
            self._runner.stop(StopReason.INTERRUPTED)

    def _cancel_in_loop(self) -> None:
        if self._pool is not None and not self._pool.done():
            self._pool.cancel()

    # -- the run ---------------------------------------------------------------------------------

    async def run(
        self,
        *,
        while_locked: Callable[[Path], contextlib.AbstractContextManager[Any]] | None = None,
    ) -> RunResult:
        """Lock the run folder, bring its record up to date, run the pool, write the results.

        ``while_locked(run_dir)`` is entered once the lock is held (the CLI opens run.log there).
        """
        from batchwan.execution import open_ledger  # the pool's imports, only when a run starts

        with self._lock:
            self._loop = asyncio.get_running_loop()
        prepared = self.prepared
        self._emit(checked_event(prepared.rows))
        self.phase = Phase.STARTING
        with contextlib.ExitStack() as stack:
            from batchwan.store.choose import is_postgres
            from batchwan.store.sqlite import refuse_lost_record

            spec = prepared.spec
            # Runners of a shared run may share a folder; the shared store keeps them apart.
            stack.enter_context(RunLock(prepared.run_dir, shared=is_postgres(spec.store)))
            refuse_lost_record(prepared.run_dir, new_record=self.settings.new_record,
                               store=spec.store)  # fmt: skip
            if while_locked is not None:
                stack.enter_context(while_locked(prepared.run_dir))
            rows, self._sendable, warnings = _priced(prepared)
            ledger, changed = open_ledger(
                prepared.run_dir, prepared.spec.sheet, rows, prepared.extra_columns,
                price_book(prepared.spec), model=prepared.spec.model,
                resubmit_unknown=self.settings.resubmit_unknown,
                retry_failed=self.settings.retry_failed, max_cost=prepared.spec.max_cost,
                store=spec.store,
            )  # fmt: skip
            try:
                _remember_choices(ledger, prepared.spec)
                result = await self._run_recorded(ledger, changed, warnings)
            finally:
                ledger.close()
        self.phase = Phase.DONE
        counts = Counter(record.status.value for record in result.records)
        stop = result.outcome.stop.value if result.outcome.stop else None
        said = (*result.warnings, *result.problems)
        self._emit(events.RunEnded(prepared.run_dir, dict(counts), stop, said))
        return result

    async def _run_recorded(
        self, ledger: Store, changed: list[str], notes: Sequence[str] = ()
    ) -> RunResult:
        """The pool and the final outputs; ``changed`` rows need attention, ``notes`` are said."""
        from batchwan.execution import write_final_outputs
        from batchwan.pool.refresh import FreshRecords

        prepared = self.prepared
        fresh = FreshRecords(ledger)  # the refresh's rows, and at the end the final outputs'
        to_follow = _to_follow(prepared.rows, ledger)
        self._emit(
            events.RunStarted(prepared.run_dir, len(prepared.rows), to_follow, (*notes, *changed))
        )
        if self._stop_asked:  # asked before the pool started: nothing was sent
            outcome = RunOutcome(StopReason.INTERRUPTED, "interrupted before anything was sent")
        else:
            try:
                outcome = await self._run_pool(ledger, fresh)
            except BaseException:  # cancelled from outside: the results still match the record
                write_final_outputs(ledger, fresh=fresh)
                raise
        self.phase = Phase.FINISHING
        view, problems = write_final_outputs(
            ledger, report=True, xlsx=self.settings.xlsx, fresh=fresh
        )
        return RunResult(
            prepared.run_dir,
            view.records,
            outcome,
            (*notes, *changed),
            tuple(problems),
            rows_changed=bool(changed),
        )

    async def _run_pool(self, ledger: Store, fresh: FreshRecords) -> RunOutcome:
        from batchwan.execution import Endpoint, execute

        settings, spec = self.settings, self.prepared.spec
        options = RunOptions(
            concurrency=spec.concurrency, rate=spec.rate, poll_interval=spec.poll_interval,
            task_deadline=settings.task_deadline, wait=settings.wait, download=settings.download,
            max_cost=spec.max_cost, limit=spec.limit, poll_rate=settings.poll_rate,
        )  # fmt: skip
        endpoint = Endpoint(settings.base_url, settings.api_key, spec.model, settings.limits)
        async with contextlib.AsyncExitStack() as stack:
            if settings.simulate:
                from batchwan.sim.simulator import SimConfig, serve

                # A fresh seed each run: reruns in one run folder must never see a task id twice.
                # Quick renders, so a first run shows the whole flow in seconds.
                config = SimConfig(
                    seed=secrets.randbits(32), pending_seconds=0.3, processing_seconds=1.5
                )
                sim = await stack.enter_async_context(serve(config))
                endpoint = Endpoint(sim.base_url, None, spec.model, settings.limits)
            self._pool = asyncio.create_task(
                execute(ledger, self._sendable, options, endpoint,
                        on_event=self._runner_event, on_runner=self._runner_ready,
                        index_sends=not spec.store, fresh=fresh)
            )  # fmt: skip
            self.phase = Phase.POOL
            try:
                outcome = await self._pool
            except asyncio.CancelledError:
                if not self._cancel_asked or _cancelling():
                    raise  # our own caller cancelled: that always propagates
                outcome = RunOutcome(StopReason.INTERRUPTED, "interrupted twice")
        return outcome

    def _runner_ready(self, runner: Runner) -> None:
        self._runner = runner
        if self._stop_asked:  # a stop came while the pool was being set up
            self._stop_in_loop()

    def _runner_event(self, event: RunEvent) -> None:
        typed = events.from_runner(event)
        if typed is not None:
            self._emit(typed)

    def _emit(self, event: events.Event) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(event)
        except Exception:  # someone's progress display must never lose a run
            log.exception("the on_event callback failed on %r", event)


def _cancelling() -> bool:
    """True when the current task itself is being cancelled (not only what it awaited)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _to_follow(rows: Sequence[CheckedRow], ledger: Store) -> int:
    """Rows this run will send or follow: valid, and pending or running in the record."""
    return sum(
        1
        for row in rows
        if row.status is Status.PENDING
        and ledger.status(row.key) in (Status.PENDING, Status.RUNNING)
    )


def _priced(prepared: Prepared) -> tuple[list[CheckedRow], list[CheckedRow], list[str]]:
    """(rows to record, rows the pool may send, warnings): under --max-cost a row of unknown
    price is held back with the reason; without a ceiling it is sent, and that is said."""
    from batchwan.pricing import hold_unpriced, unpriced

    spec = prepared.spec
    book = price_book(spec)
    rows, sendable = hold_unpriced(prepared.rows, book, spec.max_cost)
    warnings = []
    if spec.max_cost is None and (missing := unpriced(rows, book)):
        warnings.append(
            f"no known price for {', '.join(missing)}; those rows are sent and their cost shows "
            "as $0.00 (give it under `prices:` in the job file)"
        )
    return rows, sendable, warnings


def _remember_choices(ledger: Store, spec: JobSpec) -> None:
    """Keep what `status` and `report` need later: the breakdown, the allowed image folder."""
    import json

    from batchwan.outputs.groups import GROUP_BY_META

    if spec.group_by:
        ledger.set_meta(GROUP_BY_META, json.dumps(list(spec.group_by)))
    if spec.image_root:  # the report previews only images inside the allowed folder
        ledger.set_meta("image_root", str(spec.image_root.resolve()))
