"""`batchwan report`."""

from __future__ import annotations

from pathlib import Path

import click

from batchwan.cli import exit_codes
from batchwan.cli.common import no_run_message
from batchwan.errors import StateError


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.pass_context
def report(ctx: click.Context, run_dir: Path) -> None:
    """Write report.html in RUN_DIR from the run folder alone, and print its path.

    One self-contained page for the people who read the results: figures, charts, errors grouped
    by reason, and every row with its image, prompt, status and video. It opens offline, from
    disk or as a mail attachment; keep it in the run folder for the videos to play.

    \b
    Example:
      batchwan report runs/demo

    Exit 2 when RUN_DIR holds no run.
    """
    # Imported here: Pillow is slow to load and no other command needs it.
    from batchwan.outputs.report import write_report

    try:
        path = write_report(run_dir)
    except StateError as exc:
        click.echo(f"Error: {no_run_message(run_dir, exc)}", err=True)
        ctx.exit(exit_codes.CANNOT_START)
    except OSError as exc:
        click.echo(f"Error: cannot write the report in {run_dir}: {exc}", err=True)
        ctx.exit(exit_codes.CANNOT_START)
    click.echo(str(path))
