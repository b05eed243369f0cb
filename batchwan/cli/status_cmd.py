"""`batchwan status`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from batchwan.cli import exit_codes
from batchwan.cli.common import no_run_message
from batchwan.errors import StateError
from batchwan.outputs.statusview import load_status, render_status
from batchwan.values import Status


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--rows", "all_rows", is_flag=True, help="List every row with its video or error.")
@click.pass_context
def status(ctx: click.Context, run_dir: Path, all_rows: bool) -> None:
    """Show a run's counts, cost and times, and the rows that need attention.

    Reads RUN_DIR alone (no network, nothing written), so it also works while a run is going.

    \b
    Examples:
      batchwan status runs/demo
      batchwan status runs/demo --rows

    \b
    Exit codes: 0 every row succeeded; 1 some rows need attention or are still open;
    2 RUN_DIR holds no run.
    """
    try:
        records, counts, meta, summary = load_status(run_dir, all_rows=all_rows)
    except StateError as exc:
        click.echo(f"Error: {no_run_message(run_dir, exc)}", err=True)
        ctx.exit(exit_codes.CANNOT_START)
    title = f"Run {run_dir}"
    facts = [f"sheet {Path(meta['sheet']).name}" if meta.get("sheet") else "", meta.get("model")]
    if any(facts):
        title += " (" + ", ".join(f for f in facts if f) + ")"
    text = render_status(
        title, records, summary, now=datetime.now(UTC), all_rows=all_rows, counts=counts
    )
    click.echo(text, nl=False)
    done = set(counts) <= {Status.SUCCEEDED}
    ctx.exit(exit_codes.OK if done else exit_codes.ROWS_NEED_ATTENTION)
