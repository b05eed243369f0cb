"""One run from start to end: open the run folder, run the pool, keep the results fresh."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from batchwan.catalog.prices import row_cost
from batchwan.checks.validation import build_body
from batchwan.outputs.results import summarize, write_results_csv, write_summary
from batchwan.pool.refresh import FreshRecords
from batchwan.pool.runner import RunEvent, Runner, RunOptions, RunOutcome
from batchwan.provider.client import Client, open_session
from batchwan.store.ledger import Ledger
from batchwan.store.records import Snapshot
from batchwan.store.schema import iso_utc, now_utc
from batchwan.values import CheckedRow, Status

log = logging.getLogger(__name__)

#: How often results.csv and summary.json are rewritten while a run goes on.
REFRESH_SECONDS = 2.0


@dataclass(frozen=True)
class Endpoint:
    """Where the provider is and how to prove who we are."""

    base_url: str
    api_key: str | None
    model: str


def open_ledger(
    run_dir: Path,
    sheet: Path,
    rows: Sequence[CheckedRow],
    extra_columns: Sequence[str],
    prices: dict[str, float],
    *,
    model: str,
    resubmit_unknown: bool = False,
    retry_failed: bool = False,
    max_cost: float | None = None,
) -> tuple[Ledger, list[str]]:
    """Open (or start) the run's record and bring it up to date with the sheet as read now."""
    ledger = Ledger(run_dir)
    try:
        ledger.claim(sheet, model, max_cost)
        lost = ledger.recover(resubmit_unknown=resubmit_unknown, retry_failed=retry_failed)
        costs = [
            row_cost(row.resolution, row.duration, prices) if row.status is Status.PENDING else 0.0
            for row in rows
        ]
        warnings = ledger.sync_sheet(rows, costs, extra_columns)
    except BaseException:
        ledger.close()
        raise
    if lost:
        warnings.insert(0, f"{lost} row(s) had a create on the wire when the last run stopped; "
                        "they are now `unknown` (see --resubmit-unknown)")  # fmt: skip
    return ledger, warnings


def write_outputs(source: Ledger | Snapshot) -> None:
    """Rewrite results.csv and summary.json from the record, each in one step."""
    records = source.records()
    columns = json.loads(source.meta.get("columns", "[]"))
    meta = {**source.meta, "updated_at": iso_utc(now_utc()) or ""}
    write_results_csv(source.run_dir, records, columns)
    write_summary(source.run_dir, summarize(records, meta))


async def _refresh(ledger: Ledger) -> None:
    """Keep the results fresh without slowing the pool: rebuild what changed, write off the loop."""
    interval = REFRESH_SECONDS
    loop = asyncio.get_running_loop()
    fresh = FreshRecords(ledger)  # copies and rebuilds only the rows that changed
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


async def execute(
    ledger: Ledger,
    rows: Sequence[CheckedRow],
    options: RunOptions,
    endpoint: Endpoint,
    *,
    on_event: Callable[[RunEvent], None] = lambda event: None,
    on_runner: Callable[[Runner], None] = lambda runner: None,
) -> RunOutcome:
    """Run the pool against one endpoint, refreshing the results as it goes."""
    # Every durable write is a hand-off to the ledger's writer thread and back; Python's
    # default 5 ms GIL switch interval would add up to that much latency to each of them.
    previous = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    try:
        return await _execute(ledger, rows, options, endpoint, on_event, on_runner)
    finally:
        sys.setswitchinterval(previous)


async def _execute(
    ledger: Ledger,
    rows: Sequence[CheckedRow],
    options: RunOptions,
    endpoint: Endpoint,
    on_event: Callable[[RunEvent], None],
    on_runner: Callable[[Runner], None],
) -> RunOutcome:
    connections = options.sizes().connections
    async with open_session(limit=connections, limit_per_host=connections) as session:
        client = Client(
            session, base_url=endpoint.base_url, api_key=endpoint.api_key, model=endpoint.model
        )
        runner = Runner(ledger, client, options, body_for=build_body, on_event=on_event)
        on_runner(runner)
        sent_before, done_before = ledger.tally()
        number = ledger.begin_run(dataclasses.asdict(options))
        refresher = asyncio.create_task(_refresh(ledger))
        try:
            return await runner.run(rows)
        finally:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher
            sent_after, done_after = ledger.tally()
            ledger.end_run(
                number, sent=sent_after - sent_before, collected=done_after - done_before
            )
            write_outputs(ledger)
