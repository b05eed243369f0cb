"""`batchwan run`: validate, submit, follow, download, and write the results.

The work is the core's (``batchwan.pipeline``); this module parses the options, reads the
environment, installs the signal handlers, draws progress, prints, and picks the exit code.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import shlex
import signal
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from batchwan.cli import exit_codes
from batchwan.cli.common import (
    STORE_VARIABLE,
    api_key,
    base_url,
    close_logging,
    echo,
    exit_on_errors,
    fail,
    leave,
    setup_logging,
)
from batchwan.cli.progress import Progress
from batchwan.cli.sheet import print_issues, print_notes
from batchwan.cli.status_cmd import GROUP_BY_HELP
from batchwan.events import Event, RunStarted
from batchwan.pipeline import (
    SIMULATOR_POLL_INTERVAL,
    Phase,
    Pipeline,
    Prepared,
    RunResult,
    RunSettings,
    dry_plan,
    prepare,
    prepare_dry,
)
from batchwan.values import DEFAULT_BASE_URL, DEFAULT_MODEL, JobSpec, Status

if TYPE_CHECKING:
    from batchwan.provider.transport import Limits

#: The job spec's own defaults, shown in --help (an option left out keeps the job file's).
_SPEC = JobSpec(sheet=Path("-"))

# Every durable write is a hand-off to the record's writer thread and back; Python's default
# 5 ms GIL switch interval would add up to that much latency to each. The command owns its
# process, so it may change that; the library never does.
_SWITCH_INTERVAL = 0.0005


@click.command()
@click.argument("source", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    help="Run folder.  [default: the job file's out:, else runs/<sheet name>]",
)
@click.option("--simulate", is_flag=True, help="Run against the built-in simulator; no key.")
@click.option(
    "--base-url",
    "base_url_option",
    help=f"Provider base URL.  [default: $BATCHWAN_BASE_URL, else {DEFAULT_BASE_URL}]",
)
@click.option("--model", help=f"Model name.  [default: {DEFAULT_MODEL}]")
@click.option(
    "--image-root",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Local images must lie inside this folder.  [default: the sheet's folder]",
)
@click.option(
    "--fix-images", is_flag=True, help="Resize/convert fixable images into the run folder."
)
@click.option("--xlsx", is_flag=True, help="Also write results.xlsx.")
@click.option(
    "--concurrency",
    type=click.IntRange(1, 512),
    help=f"Most tasks in flight.  [default: {_SPEC.concurrency}]",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0.01),
    help=f"Most creates per second.  [default: {_SPEC.rate:g}]",
)
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0.01),
    help=f"Seconds between polls of a task.  [default: {_SPEC.poll_interval:g}; "
    f"{SIMULATOR_POLL_INTERVAL:g} with --simulate]",
)
@click.option(
    "--poll-rate",
    type=click.FloatRange(min=0.01),
    default=20.0,
    show_default=True,
    help="Most status lookups per second, across all tasks.",
)
@click.option(
    "--max-cost",
    type=click.FloatRange(min=0),
    help="USD ceiling for this run folder.  [default: no ceiling]",
)
@click.option("--dry-run", is_flag=True, help="Validate and print the plan; send nothing.")
@click.option("--no-wait", is_flag=True, help="Submit and exit; a later run collects.")
@click.option("--no-download", is_flag=True, help="Record video URLs; do not download.")
@click.option(
    "--resubmit-unknown", is_flag=True, help="Send `unknown` rows again (may bill twice)."
)
@click.option("--retry-failed", is_flag=True, help="Send `failed` rows again.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing unless something needs attention.")
@click.option("--tab", help="The worksheet of an .xlsx workbook to read (default: the first).")
@click.option("--include-hidden", is_flag=True, help="Also send rows hidden in the workbook.")
@click.option("--limit", type=click.IntRange(min=1), help="Send at most N new rows this run.")
@click.option(
    "--allow-repeat", is_flag=True, help="Send rows already sent from another run folder."
)
@click.option(
    "--new-record",
    is_flag=True,
    help="Start a new record in a folder whose state.db is gone (rows may be sent again).",
)
@click.option(
    "--store",
    help="Where the record is kept: postgresql://... for a run shared by many runners "
    "(default $BATCHWAN_STORE, else the run folder's state.db).",
)
@click.option("--task-deadline", type=click.FloatRange(min=1), default=3600, hidden=True)
@click.option(
    "--create-deadline",
    type=click.FloatRange(min=0.01),
    default=120,
    show_default=True,
    help="Seconds a create may take in all; past it the row is `unknown`.",
)
@click.option(
    "--poll-deadline",
    type=click.FloatRange(min=0.01),
    default=60,
    show_default=True,
    help="Seconds a status lookup may take in all; past it, it is asked again.",
)
@click.option(
    "--download-deadline",
    type=click.FloatRange(min=0.01),
    default=1800,
    show_default=True,
    help="Seconds a video download may take in all.",
)
@click.option(
    "--max-video-mb",
    type=click.FloatRange(min=0.001),
    default=2048,
    show_default=True,
    help="A video larger than this many MB is refused.",
)
@click.option("--group-by", "group_by", metavar="COLUMNS", help=GROUP_BY_HELP)
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
    tab: str | None,
    include_hidden: bool,
    limit: int | None,
    allow_repeat: bool,
    new_record: bool,
    store: str | None,
    task_deadline: float,
    create_deadline: float,
    poll_deadline: float,
    download_deadline: float,
    max_video_mb: float,
    group_by: str | None,
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
    overrides = {
        "model": model, "out": out, "concurrency": concurrency, "rate": rate,
        "poll_interval": poll_interval, "max_cost": max_cost, "image_root": image_root,
        "group_by": _group_by(group_by), "tab": tab, "include_hidden": include_hidden or None,
        "limit": limit, "allow_repeat": allow_repeat or None, "store": store,
    }  # fmt: skip
    key = api_key()
    settings = RunSettings(
        base_url=base_url(base_url_option), api_key=key, simulate=simulate, wait=not no_wait,
        download=not no_download, resubmit_unknown=resubmit_unknown, retry_failed=retry_failed,
        fix_images=fix_images, xlsx=xlsx, task_deadline=task_deadline,
        limits=_limits(create_deadline, poll_deadline, download_deadline, max_video_mb),
        new_record=new_record, default_store=os.environ.get(STORE_VARIABLE) or None,
        poll_rate=poll_rate,
    )  # fmt: skip
    resume = _resume_command(source, out, simulate, base_url_option)
    with exit_on_errors(), _interrupted(None, resume):
        if not (simulate or dry_run or key):
            fail(
                "MULEROUTER_API_KEY is not set: export it (never pass a key as an option), "
                "or try the built-in simulator with --simulate",
                exit_codes.CANNOT_START,
            )
        if dry_run:
            prepared = prepare_dry(source, overrides, fix_images=fix_images, settings=settings)
            _said_on_reading(prepared, quiet)
            from batchwan.plan import format_plan

            plan, warnings = dry_plan(prepared, settings)
            for warning in warnings:
                echo(f"warning: {warning}", err=True)
            echo(format_plan(plan))
            if (limit := prepared.spec.limit) is not None and plan.new > limit:
                echo(f"--limit {limit}: this run sends {limit} of the {plan.new} new rows; "
                     f"the other {plan.new - limit} stay pending")  # fmt: skip
            leave(exit_codes.for_checked(prepared.rows))
        prepared = prepare(
            source, overrides, simulate=simulate, fix_images=fix_images, settings=settings
        )
        _said_on_reading(prepared, quiet)
        pipeline = Pipeline(prepared, settings)
        with _interrupted(pipeline, resume):
            result = _drive(pipeline, quiet)
            code = exit_codes.for_run(result, wait=settings.wait, download=settings.download)
            for problem in result.problems:
                echo(f"warning: {problem}", err=True)
            if not quiet or code != exit_codes.OK:
                _print_summary(result, code, resume)
    leave(code)


def _said_on_reading(prepared: Prepared, quiet: bool) -> None:
    """What reading the sheet guessed, every row's problems, and a sheet with no rows at all."""
    print_notes(prepared.notes, quiet=quiet)
    if not prepared.rows:  # under cron, "nothing to do" must not look like success
        fail(
            f"{prepared.spec.sheet}: the sheet has no data rows; nothing to send",
            exit_codes.ROWS_NEED_ATTENTION,
        )
    print_issues(prepared.rows, quiet=quiet)


def _group_by(option: str | None) -> tuple[str, ...] | None:
    """--group-by campaign,owner as column names; None when not given (the job file's stands)."""
    from batchwan.outputs.groups import parse_group_by

    return parse_group_by(option) if option is not None else None


def _limits(create: float, poll: float, download: float, max_video_mb: float) -> Limits:
    """The deadlines and size caps of every call to the provider, from the options."""
    from batchwan.provider.transport import MB, Limits

    return Limits(
        create_deadline=create, poll_deadline=poll, download_deadline=download,
        max_video_bytes=int(max_video_mb * MB),
    )  # fmt: skip


def _resume_command(
    source: Path, out: Path | None, simulate: bool, base_url_option: str | None
) -> str:
    """The command that continues this run (its folder and endpoint; the rest as the user likes)."""
    words = ["batchwan", "run", str(source)]
    if out is not None:
        words += ["--out", str(out)]
    if simulate:
        words.append("--simulate")
    if base_url_option:
        words += ["--base-url", base_url_option]
    return shlex.join(words)


@contextlib.contextmanager
def _interrupted(pipeline: Pipeline | None, resume: str) -> Iterator[None]:
    """Ctrl-C where no handler is installed: say truthfully what had happened by then."""
    try:
        yield
    except KeyboardInterrupt:
        phase = pipeline.phase if pipeline is not None else Phase.READY
        if phase is Phase.READY:
            echo("\ninterrupted before anything was sent", err=True)
        elif phase in (Phase.FINISHING, Phase.DONE):
            echo(
                "\ninterrupted after the run ended; the record is complete "
                f"(`batchwan status {pipeline.prepared.run_dir if pipeline else ''}` shows it)",
                err=True,
            )
        else:
            echo(f"\ninterrupted; the record is saved; to continue: {resume}", err=True)
        leave(exit_codes.INTERRUPTED)


def _console_level(quiet: bool) -> int | None:
    """Progress bars on a terminal say enough; elsewhere (cron, CI) plain log lines do."""
    if quiet:
        return None
    return logging.WARNING if sys.stderr.isatty() else logging.INFO


@contextlib.contextmanager
def _logging_to(run_dir: Path, *, quiet: bool) -> Iterator[None]:
    """Log to the run folder's run.log (and the console) while the run holds its folder."""
    handlers = setup_logging(run_dir / "run.log", console_level=_console_level(quiet))
    try:
        yield
    finally:
        close_logging(handlers)


def _drive(pipeline: Pipeline, quiet: bool) -> RunResult:
    """Run the pipeline on a loop of our own, with Ctrl-C and SIGTERM asking it to stop."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(_SWITCH_INTERVAL)
    try:
        return asyncio.run(_main(pipeline, quiet))
    finally:
        sys.setswitchinterval(previous)


async def _main(pipeline: Pipeline, quiet: bool) -> RunResult:
    progress = Progress(enabled=not quiet and sys.stderr.isatty())

    def on_event(event: Event) -> None:
        if isinstance(event, RunStarted):  # said before the run, as a long run may take hours
            for warning in event.warnings:
                echo(f"warning: {warning}", err=True)
        progress.update(event)

    pipeline.on_event = on_event
    loop = asyncio.get_running_loop()
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals == 1 and pipeline.phase is Phase.POOL:
            echo("\nstopping: no new creates; saving state (Ctrl-C again to quit now)", err=True)
            pipeline.stop()
        elif signals == 1:
            pipeline.stop()  # before the pool: nothing will be sent; after it: nothing to stop
        else:
            pipeline.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    try:
        return await pipeline.run(while_locked=functools.partial(_logging_to, quiet=quiet))
    finally:
        progress.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _print_summary(result: RunResult, code: int, resume: str) -> None:
    records, run_dir, outcome = result.records, result.run_dir, result.outcome
    if not records:
        echo("the sheet has no data rows; nothing to do")
        return
    counts = Counter(r.status.value for r in records)
    parts = ", ".join(f"{n} {status}" for status, n in counts.most_common())
    spent = sum(r.cost for r in records if r.status is Status.SUCCEEDED)
    noun = "row" if len(records) == 1 else "rows"
    echo(f"{len(records)} {noun}: {parts}; ${spent:.2f} spent")
    if outcome.stop is not None:
        echo(f"stopped early: {outcome.message or outcome.stop.value}")
    echo(f"results: {run_dir / 'results.csv'}")
    if any(r.video_file for r in records):
        echo(f"videos:  {run_dir / 'videos'}/")
    echo(f"report:  {run_dir / 'report.html'}")
    if code == exit_codes.INTERRUPTED:
        echo(f"to continue: {resume}")
    elif code == exit_codes.ROWS_NEED_ATTENTION:
        echo(f"some rows need attention: batchwan status {run_dir}")
