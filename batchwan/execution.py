"""The record and the pool of one run: open the record, run the pool, keep the results fresh."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from batchwan.catalog.prices import PriceBook
from batchwan.checks.validation import build_body
from batchwan.outputs.results import (
    RESULTS_FILE,
    run_summary,
    write_results_csv,
    write_results_text,
    write_summary,
)
from batchwan.outputs.runview import RunView
from batchwan.pool.refresh import FreshRecords
from batchwan.pool.runner import RunEvent, Runner, RunOptions, RunOutcome
from batchwan.pricing import row_cost
from batchwan.provider.client import Client, open_session
from batchwan.provider.downloads import policy_resolver
from batchwan.provider.transport import Limits
from batchwan.store.base import Store
from batchwan.store.choose import open_store
from batchwan.store.records import Snapshot
from batchwan.store.repeats import RepeatIndex
from batchwan.store.schema import iso_utc, now_utc
from batchwan.store.sqlite import SqliteStore
from batchwan.store.writer import Writer
from batchwan.values import CheckedRow, RowRecord, Status

log = logging.getLogger(__name__)

#: How often results.csv and summary.json are rewritten while a run goes on.
REFRESH_SECONDS = 2.0
#: How often a runner of a shared run, done with its own tasks, looks for tasks to take over.
SHARED_RECHECK_SECONDS = 0.5


@dataclass(frozen=True)
class Endpoint:
    """Where the provider is and how to prove who we are."""

    base_url: str
    api_key: str | None
    model: str
    limits: Limits | None = None  # deadlines and size caps of every call; None: the defaults


def open_ledger(
    run_dir: Path,
    sheet: Path,
    rows: Sequence[CheckedRow],
    extra_columns: Sequence[str],
    prices: PriceBook | dict[str, float],
    *,
    model: str,
    resubmit_unknown: bool = False,
    retry_failed: bool = False,
    max_cost: float | None = None,
    store: str | None = None,
) -> tuple[Store, list[str]]:
    """Open (or start) the run's record and bring it up to date with the sheet as read now."""
    ledger = open_store(run_dir, store)
    try:
        ledger.claim(sheet, model, max_cost, keys=[row.key for row in rows])
        lost = ledger.recover(resubmit_unknown=resubmit_unknown, retry_failed=retry_failed)
        # A row of unknown price is recorded at 0.0: the plan says so, and under a ceiling it
        # is held back before it gets here (pricing.hold_unpriced).
        costs = _costs(rows, prices)
        warnings = ledger.sync_sheet(rows, costs, extra_columns)
    except BaseException:
        ledger.close()
        raise
    if lost:
        warnings.insert(0, f"{lost} row(s) had a create on the wire when the last run stopped; "
                        "they are now `unknown` (see --resubmit-unknown)")  # fmt: skip
    return ledger, warnings


def _costs(rows: Sequence[CheckedRow], prices: PriceBook | dict[str, float]) -> list[float]:
    """Each row's estimated USD (0.0 for rows not to be sent), worked out once per kind of row:
    a big sheet has few (model, resolution, duration) among its rows."""
    known: dict[tuple[str, str, int], float] = {}
    costs = []
    for row in rows:
        if row.status is not Status.PENDING:
            costs.append(0.0)
            continue
        kind = (row.model, row.resolution, row.duration)
        cost = known.get(kind)
        if cost is None:
            cost = known[kind] = row_cost(row, prices) or 0.0
        costs.append(cost)
    return costs


def run_view(source: Store | Snapshot, records: list[RowRecord] | None = None) -> RunView:
    """The rows and summary of the run as the record holds them now (or as ``records``, when
    built already), built once."""
    records = source.records() if records is None else records
    meta = {**source.meta, "updated_at": iso_utc(now_utc()) or ""}
    summary = run_summary(records, meta, source.run_dir, source.committed_cost())
    return RunView(source.run_dir, records, meta, summary)


def write_view(view: RunView, results: str | None = None) -> None:
    """Bring results.csv (as ``results``, when rendered already) and summary.json up to date
    with ``view``, each in one step."""
    if results is None:
        write_results_csv(view.run_dir, view.records, view.columns)
    else:
        write_results_text(view.run_dir / RESULTS_FILE, results)
    write_summary(view.run_dir, view.summary)


def write_outputs(source: Store | Snapshot) -> RunView:
    """Bring results.csv and summary.json up to date from the record; the view written."""
    view = run_view(source)
    write_view(view)
    return view


async def _refresh(fresh: FreshRecords) -> None:
    """Keep the results fresh without slowing the pool: rebuild what changed, write off the loop."""
    interval = REFRESH_SECONDS
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(interval)
        started = loop.time()
        try:
            if fresh.take():  # nothing written since the last refresh: nothing to rewrite
                await fresh.write()
        except OSError as exc:  # a full disk must not kill the run: the ledger is what counts
            log.warning("could not refresh results: %s", exc)
        # A huge sheet makes each refresh dear: spend at most a tenth of the time on them.
        interval = max(REFRESH_SECONDS, 10 * (loop.time() - started))


def _writer_of(ledger: Store) -> Writer | None:
    """The record's writer thread when it is a local file, to write the index of sends too."""
    return ledger.writer if isinstance(ledger, SqliteStore) else None


async def execute(
    ledger: Store,
    rows: Sequence[CheckedRow],
    options: RunOptions,
    endpoint: Endpoint,
    *,
    on_event: Callable[[RunEvent], None] = lambda event: None,
    on_runner: Callable[[Runner], None] = lambda runner: None,
    index_sends: bool = True,
    fresh: FreshRecords | None = None,
) -> RunOutcome:
    """Run the pool against one endpoint, refreshing the results as it goes (through
    ``fresh``, when the caller wants the rows it built for the end).

    With ``index_sends`` (a run with its own record), each create also goes into the machine's
    index of sends, so that no other run folder repeats it. The caller writes the final results
    (``write_final_outputs``) once the pool is done.
    """
    connections = options.sizes().connections
    resolver = policy_resolver(endpoint.base_url)
    async with open_session(
        limit=connections, limit_per_host=connections, resolver=resolver
    ) as session:
        client = Client(
            session, base_url=endpoint.base_url, api_key=endpoint.api_key, model=endpoint.model,
            limits=endpoint.limits or Limits(),
        )  # fmt: skip
        # A simulated run has no key and stays out of the index; a shared run's store already
        # sends each row once across all its runners and folders.
        repeats = (
            RepeatIndex.open(endpoint.base_url, endpoint.api_key, writer=_writer_of(ledger))
            if endpoint.api_key and index_sends
            else None
        )

        def new_runner() -> Runner:
            runner = Runner(
                ledger, client, options, body_for=build_body, on_event=on_event, repeats=repeats,
                limits=ledger.limits(options.concurrency, options.rate),
            )  # fmt: skip
            on_runner(runner)
            return runner

        runner = new_runner()
        sent_before, done_before = ledger.tally()
        number = ledger.begin_run(dataclasses.asdict(options))
        # Copies and rebuilds only the rows that changed.
        refresher = asyncio.create_task(_refresh(fresh or FreshRecords(ledger)))
        try:
            outcome = await runner.run(rows)
            # A shared run: stay while other runners have tasks open, and take over those of
            # runners that stopped (their lease ran out).
            while outcome.stop is None and options.wait and not runner.stopping:
                more = await asyncio.to_thread(ledger.more_to_follow, downloads=options.download)
                if more is None:
                    await asyncio.sleep(SHARED_RECHECK_SECONDS)
                    continue
                if not more:
                    break
                runner = new_runner()
                outcome = await runner.run(rows)
            return outcome
        finally:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher
            sent_after, done_after = ledger.tally()
            ledger.end_run(
                number, sent=sent_after - sent_before, collected=done_after - done_before
            )
            if repeats is not None:
                repeats.close()
            await resolver.close()  # the run is over: nothing more is looked up


def write_final_outputs(
    ledger: Store,
    *,
    report: bool = False,
    xlsx: bool = False,
    fresh: FreshRecords | None = None,
) -> tuple[RunView, list[str]]:
    """The last write of results.csv and summary.json (and, with ``report``, of report.html,
    and of results.xlsx with ``xlsx``), all from one build of the rows; that view, and what
    went wrong (nothing: an empty list).

    Given the refresh's ``fresh``, the rows it built and the lines it rendered are brought up
    to date and taken as they are: a long run's rows are not all built again at its end.

    A full disk here must not hide the run's outcome: the record is what counts, and the
    next run (or `batchwan report`) reads it.
    """
    settled = fresh.settle() if fresh is not None else None
    if settled is None:
        view, results = run_view(ledger), None
    else:
        built, results = settled
        view = run_view(ledger, built.records())
    problems: list[str] = []
    try:
        write_view(view, results)
    except OSError as exc:
        log.error("could not write the results: %s", exc)
        problems.append(
            f"could not write results.csv or summary.json: {exc.strerror or exc}; the record "
            "(state.db) is intact; free some space and run again to write them"
        )
    if report and (problem := _write_extras(view, xlsx)):
        problems.append(problem)
    return view, problems


def _write_extras(view: RunView, xlsx: bool) -> str | None:
    """The report (always) and results.xlsx (when asked); None when done, else why not."""
    try:
        from batchwan.outputs.report import write_report

        write_report(view)
        if xlsx:
            from batchwan.outputs.xlsx import write_run_workbook

            write_run_workbook(view)
    except Exception as exc:  # the report is derived: its failure must not hide the run's
        log.exception("could not write the report")
        return f"could not write the report or results.xlsx: {exc}"
    return None
