"""`batchwan report`."""

from __future__ import annotations

from pathlib import Path

import click

from batchwan.cli import exit_codes
from batchwan.cli.common import echo, no_run_message
from batchwan.cli.status_cmd import GROUP_BY_HELP, resolve_group_by
from batchwan.errors import InputError, StateError
from batchwan.store.records import read_meta


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--group-by", "group_by", metavar="COLUMNS", help=GROUP_BY_HELP)
@click.pass_context
def report(ctx: click.Context, run_dir: Path, group_by: str | None) -> None:
    """Write report.html in RUN_DIR from the run folder alone, and print its path.

    One self-contained page for the people who read the results: figures, charts, errors grouped
    by cause, cost and status by group (model, resolution and the columns of --group-by, by
    default those the run was started with), the runs, and every row with its image, prompt,
    status, cost and video, sortable by any column. It opens offline, from disk or as a mail
    attachment, and reads well on a phone; keep it in the run folder for the videos to play.

    \b
    Examples:
      batchwan report runs/demo
      batchwan report runs/demo --group-by campaign,owner

    Exit 2 when RUN_DIR holds no run, or --group-by names a column the sheet does not have.
    """
    # Imported here: Pillow is slow to load and no other command needs it.
    from batchwan.outputs.report import write_report

    try:
        columns = resolve_group_by(group_by, read_meta(run_dir))
        path = write_report(run_dir, columns)
    except StateError as exc:
        echo(f"Error: {no_run_message(run_dir, exc)}", err=True)
        ctx.exit(exit_codes.CANNOT_START)
    except InputError as exc:
        echo(f"Error: {exc}", err=True)
        ctx.exit(exit_codes.CANNOT_START)
    except OSError as exc:
        echo(f"Error: cannot write the report in {run_dir}: {exc}", err=True)
        ctx.exit(exit_codes.CANNOT_START)
    click.echo(str(path))
