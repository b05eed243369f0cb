"""`batchwan run`: validate, submit, follow, download, and write the results."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import secrets
import signal
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import click

from batchwan.cli import exit_codes
from batchwan.cli.common import (
    api_key,
    base_url,
    close_logging,
    exit_on_errors,
    fail,
    setup_logging,
)
from batchwan.cli.progress import Progress
from batchwan.cli.sheet import checked_sheet, print_issues
from batchwan.pipeline import Endpoint, execute, open_ledger
from batchwan.pool.runner import Runner, RunOptions, RunOutcome, StopReason
from batchwan.store.ledger import Ledger
from batchwan.store.runlock import RunLock
from batchwan.store.schema import STATE_FILE
from batchwan.values import COMMITTED, CheckedRow, JobSpec, RowRecord, Status


def _spec_with_options(spec: JobSpec, options: dict[str, Any]) -> JobSpec:
    """Command-line options override the job file."""
    overrides = {name: value for name, value in options.items() if value is not None}
    return dataclasses.replace(spec, **overrides)


@click.command()
@click.argument("source", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), help="Run folder.")
@click.option("--simulate", is_flag=True, help="Run against the built-in simulator; no key.")
@click.option(
    "--base-url",
    "base_url_option",
    help="Provider base URL (default $BATCHWAN_BASE_URL or MuleRouter).",
)
@click.option("--model", help="Model name (default wan2.5-i2v-preview).")
@click.option(
    "--image-root",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Local images must lie inside this folder (default: the sheet's folder).",
)
@click.option(
    "--fix-images", is_flag=True, help="Resize/convert fixable images into the run folder."
)
@click.option("--xlsx", is_flag=True, help="Also write results.xlsx.")
@click.option("--concurrency", type=click.IntRange(1, 512), help="Most tasks in flight (2).")
@click.option("--rate", type=click.FloatRange(min=0.01), help="Most creates per second (2).")
@click.option("--poll-interval", type=click.FloatRange(min=0.01), help="Seconds between polls.")
@click.option(
    "--poll-rate", type=click.FloatRange(min=0.01), default=20.0, help="Most polls per second (20)."
)
@click.option("--max-cost", type=click.FloatRange(min=0), help="USD ceiling for this run folder.")
@click.option("--dry-run", is_flag=True, help="Validate and print the plan; send nothing.")
@click.option("--no-wait", is_flag=True, help="Submit and exit; a later run collects.")
@click.option("--no-download", is_flag=True, help="Record video URLs; do not download.")
@click.option(
    "--resubmit-unknown", is_flag=True, help="Send `unknown` rows again (may bill twice)."
)
@click.option("--retry-failed", is_flag=True, help="Send `failed` rows again.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing unless something needs attention.")
@click.option("--task-deadline", type=click.FloatRange(min=1), default=3600, hidden=True)
def run(
    source: Path,
    out: Path | None,
    simulate: bool,
    base_url_option: str | None,
    model: str | None,
    image_root: Path | None,
    fix_images: bool,
    xlsx: bool,
    concurrency: int | None,
    rate: float | None,
    poll_interval: float | None,
    poll_rate: float,
    max_cost: float | None,
    dry_run: bool,
    no_wait: bool,
    no_download: bool,
    resubmit_unknown: bool,
    retry_failed: bool,
    quiet: bool,
    task_deadline: float,
) -> None:
    """Generate a video for every valid row of SOURCE (a sheet or a job file).

    Rerunning on the same SOURCE and --out continues the same run: rows already submitted are
    never sent again, rows still running are collected, rows added to the sheet are sent. The
    key comes from $MULEROUTER_API_KEY.

    \b
    Examples:
      batchwan run jobs/demo.yaml --simulate
      batchwan run campaign.csv --dry-run --max-cost 200
      MULEROUTER_API_KEY=... batchwan run campaign.csv --concurrency 2 --max-cost 200
    """
    with exit_on_errors(), _interrupt_before_start():
        from batchwan.sheet.jobfile import load_source

        spec = _spec_with_options(
            load_source(source),
            {"model": model, "out": out, "concurrency": concurrency, "rate": rate,
             "poll_interval": poll_interval, "max_cost": max_cost},
        )  # fmt: skip
        run_dir = spec.out or Path("runs") / spec.sheet.stem
        _refuse_to_overwrite(run_dir, source, spec.sheet)
        key = api_key()
        if not (simulate or dry_run or key):
            fail(
                "MULEROUTER_API_KEY is not set: export it (never pass a key as an option), "
                "or try the built-in simulator with --simulate",
                exit_codes.CANNOT_START,
            )
        rows, extra_columns = checked_sheet(spec, image_root, run_dir if fix_images else None)
        print_issues(rows, quiet=quiet)
        if dry_run:
            _dry_run(
                spec, run_dir, rows, retry_failed=retry_failed, resubmit_unknown=resubmit_unknown
            )
            return
        options = RunOptions(
            concurrency=spec.concurrency, rate=spec.rate, poll_interval=spec.poll_interval,
            task_deadline=task_deadline, wait=not no_wait, download=not no_download,
            max_cost=spec.max_cost, poll_rate=poll_rate,
        )  # fmt: skip
        endpoint = Endpoint(base_url=base_url(base_url_option), api_key=key, model=spec.model)
        with RunLock(run_dir):
            handlers = setup_logging(run_dir / "run.log", console_level=_console_level(quiet))
            try:
                code = _run_locked(
                    spec, run_dir, rows, extra_columns, options, endpoint,
                    simulate=simulate, xlsx=xlsx, quiet=quiet,
                    resubmit_unknown=resubmit_unknown, retry_failed=retry_failed,
                )  # fmt: skip
            finally:
                close_logging(handlers)
    sys.exit(code)


#: What a run writes into its folder; a sheet must never be one of them.
RUN_FILES = ("results.csv", "results.xlsx", "summary.json", "report.html", "run.log", "state.db")


def _refuse_to_overwrite(run_dir: Path, *sources: Path) -> None:
    """A run folder whose results would replace the sheet (or job file) itself is refused."""
    outputs = {(run_dir / name).resolve() for name in RUN_FILES}
    for source in sources:
        if source.resolve() in outputs:
            fail(
                f"{source} would be overwritten by the run's own {source.name}; "
                "choose another --out",
                exit_codes.CANNOT_START,
            )


@contextlib.contextmanager
def _interrupt_before_start() -> Iterator[None]:
    """Ctrl-C while the sheet is read or checked: nothing was sent, so just say so."""
    try:
        yield
    except KeyboardInterrupt:
        click.echo("\ninterrupted before anything was sent", err=True)
        sys.exit(exit_codes.INTERRUPTED)


def _console_level(quiet: bool) -> int | None:
    """Progress bars on a terminal say enough; elsewhere (cron, CI) plain log lines do."""
    if quiet:
        return None
    return logging.WARNING if sys.stderr.isatty() else logging.INFO


def _run_locked(
    spec: JobSpec,
    run_dir: Path,
    rows: Sequence[CheckedRow],
    extra_columns: Sequence[str],
    options: RunOptions,
    endpoint: Endpoint,
    *,
    simulate: bool,
    xlsx: bool,
    quiet: bool,
    resubmit_unknown: bool,
    retry_failed: bool,
) -> int:
    ledger, warnings = open_ledger(
        run_dir, spec.sheet, rows, extra_columns, spec.prices, model=spec.model,
        resubmit_unknown=resubmit_unknown, retry_failed=retry_failed, max_cost=spec.max_cost,
    )  # fmt: skip
    try:
        for warning in warnings:
            click.echo(f"warning: {warning}", err=True)
        # results.csv and summary.json are final already: `execute` writes them as it ends.
        outcome = asyncio.run(_main(ledger, rows, options, endpoint, simulate, quiet))
        try:
            _extras(run_dir, ledger, xlsx)
        except Exception as exc:  # the report is derived: its failure must not hide the run's
            logging.getLogger(__name__).exception("could not write the report")
            click.echo(f"warning: could not write the report or results.xlsx: {exc}", err=True)
        records = ledger.records()
    finally:
        ledger.close()
    code = exit_code(records, outcome, wait=options.wait, download=options.download)
    if warnings and code == exit_codes.OK:  # rows changed under an id already sent
        code = exit_codes.ROWS_NEED_ATTENTION
    if not quiet or code != exit_codes.OK:
        _print_summary(run_dir, records, outcome, code)
    return code


async def _main(
    ledger: Ledger,
    rows: Sequence[CheckedRow],
    options: RunOptions,
    endpoint: Endpoint,
    simulate: bool,
    quiet: bool,
) -> RunOutcome:
    progress = Progress(rows, ledger, enabled=not quiet and sys.stderr.isatty())
    holder: list[Runner] = []
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals == 1 and holder:
            click.echo(
                "\nstopping: no new creates; saving state (Ctrl-C again to quit now)", err=True
            )
            holder[0].stop(StopReason.INTERRUPTED)
        elif main_task is not None:
            main_task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    try:
        if simulate:
            from batchwan.sim.simulator import SimConfig, serve

            # A fresh seed each run: reruns in one run folder must never see a task id twice.
            # Quick renders, so a first run shows the whole flow in seconds.
            config = SimConfig(
                seed=secrets.randbits(32), pending_seconds=0.3, processing_seconds=1.5
            )
            async with serve(config) as sim:
                endpoint = dataclasses.replace(endpoint, base_url=sim.base_url, api_key=None)
                return await execute(
                    ledger, rows, options, endpoint,
                    on_event=progress.update, on_runner=holder.append,
                )  # fmt: skip
        return await execute(
            ledger, rows, options, endpoint, on_event=progress.update, on_runner=holder.append
        )
    except asyncio.CancelledError:
        return RunOutcome(StopReason.INTERRUPTED, "interrupted twice")
    finally:
        progress.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _extras(run_dir: Path, ledger: Ledger, xlsx: bool) -> None:
    """The report (always) and results.xlsx (when asked)."""
    from batchwan.outputs.report import write_report

    write_report(run_dir)
    if xlsx:
        from batchwan.outputs.results import results_table
        from batchwan.outputs.xlsx import write_results_xlsx

        header, table = results_table(
            ledger.records(), json.loads(ledger.meta.get("columns", "[]"))
        )
        write_results_xlsx(run_dir / "results.xlsx", header, table)


_NEEDS_ATTENTION = (Status.INVALID, Status.DUPLICATE, Status.FAILED, Status.UNKNOWN, Status.PENDING)


def exit_code(
    records: Sequence[RowRecord], outcome: RunOutcome, *, wait: bool, download: bool
) -> int:
    """The interface's exit code for a run that got to the end (or was stopped)."""
    if outcome.stop is StopReason.INTERRUPTED:
        return exit_codes.INTERRUPTED
    if outcome.stop in (StopReason.ACCOUNT, StopReason.BUDGET):
        return exit_codes.STOPPED_EARLY
    if any(r.status in _NEEDS_ATTENTION for r in records):
        return exit_codes.ROWS_NEED_ATTENTION
    if wait and any(r.status is Status.RUNNING for r in records):
        return exit_codes.ROWS_NEED_ATTENTION
    if (
        wait
        and download
        and any(r.status is Status.SUCCEEDED and not r.video_file for r in records)
    ):
        return exit_codes.ROWS_NEED_ATTENTION
    return exit_codes.OK


def _print_summary(
    run_dir: Path, records: Sequence[RowRecord], outcome: RunOutcome, code: int
) -> None:
    if not records:
        click.echo("the sheet has no data rows; nothing to do")
        return
    counts = Counter(r.status.value for r in records)
    parts = ", ".join(f"{n} {status}" for status, n in counts.most_common())
    spent = sum(r.cost for r in records if r.status is Status.SUCCEEDED)
    noun = "row" if len(records) == 1 else "rows"
    click.echo(f"{len(records)} {noun}: {parts}; ${spent:.2f} spent")
    if outcome.stop is not None:
        click.echo(f"stopped early: {outcome.message or outcome.stop.value}")
    click.echo(f"results: {run_dir / 'results.csv'}")
    if any(r.video_file for r in records):
        click.echo(f"videos:  {run_dir / 'videos'}/")
    click.echo(f"report:  {run_dir / 'report.html'}")
    if code == exit_codes.ROWS_NEED_ATTENTION:
        click.echo(f"some rows need attention: batchwan status {run_dir}")


def _dry_run(
    spec: JobSpec,
    run_dir: Path,
    rows: Sequence[CheckedRow],
    *,
    retry_failed: bool,
    resubmit_unknown: bool,
) -> None:
    """Print the plan and exit: 0 when every row is valid, 1 otherwise."""
    from batchwan.plan import format_plan, make_plan
    from batchwan.store.records import read_records

    existing: dict[str, Status] = {}
    committed = 0.0
    if (run_dir / STATE_FILE).is_file():
        for record in read_records(run_dir):
            existing[record.key] = record.status
            if record.status in COMMITTED:
                committed += record.cost
    plan = make_plan(
        rows, existing, prices=spec.prices, concurrency=spec.concurrency, rate=spec.rate,
        max_cost=spec.max_cost, committed=committed, retry_failed=retry_failed,
        resubmit_unknown=resubmit_unknown,
    )  # fmt: skip
    click.echo(format_plan(plan))
    bad = any(row.status in (Status.INVALID, Status.DUPLICATE) for row in rows)
    sys.exit(exit_codes.ROWS_NEED_ATTENTION if bad else exit_codes.OK)
