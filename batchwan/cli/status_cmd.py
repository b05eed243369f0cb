"""`batchwan status`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click

from batchwan.cli import exit_codes
from batchwan.cli.common import echo, no_run_message
from batchwan.errors import InputError, StateError
from batchwan.outputs.groups import check_group_by, parse_group_by, stored_group_by
from batchwan.outputs.statusjson import status_document
from batchwan.outputs.statusview import load_status, render_status
from batchwan.store.records import read_meta
from batchwan.values import Status

GROUP_BY_HELP = "The sheet's own columns to break counts and cost down by, e.g. campaign,owner."


def own_columns_of(meta: dict[str, str]) -> list[str]:
    """The sheet's own columns, as the run recorded them."""
    try:
        columns = json.loads(meta.get("columns") or "[]")
    except ValueError:
        return []
    return [str(c) for c in columns] if isinstance(columns, list) else []


def resolve_group_by(option: str | None, meta: dict[str, str]) -> tuple[str, ...]:
    """--group-by when given (checked against the sheet's columns), else the run's own."""
    if option is None:
        return stored_group_by(meta)
    wanted = parse_group_by(option)
    check_group_by(wanted, own_columns_of(meta))
    return wanted


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--rows", "all_rows", is_flag=True, help="List every row with its video or error.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document, for scripts.")
@click.option("--group-by", "group_by", metavar="COLUMNS", help=GROUP_BY_HELP)
@click.pass_context
def status(
    ctx: click.Context, run_dir: Path, all_rows: bool, as_json: bool, group_by: str | None
) -> None:
    """Show a run's counts, cost and times, and the rows that need attention.

    Reads RUN_DIR alone (no network, nothing written), so it also works while a run is going.
    Counts, seconds and cost are broken down by model, by resolution and by the columns of
    --group-by (default: those the run was started with).

    \b
    Examples:
      batchwan status runs/demo
      batchwan status runs/demo --rows
      batchwan status runs/demo --group-by campaign,owner
      batchwan status runs/demo --json | jq .counts

    \b
    Exit codes: 0 every row succeeded; 1 some rows need attention or are still open;
    2 RUN_DIR holds no run, or --group-by names a column the sheet does not have.
    """
    try:
        columns = resolve_group_by(group_by, read_meta(run_dir))
        records, counts, meta, summary = load_status(run_dir, all_rows=all_rows, group_by=columns)
    except StateError as exc:
        echo(f"Error: {no_run_message(run_dir, exc)}", err=True)
        ctx.exit(exit_codes.CANNOT_START)
    except InputError as exc:
        echo(f"Error: {exc}", err=True)
        ctx.exit(exit_codes.CANNOT_START)
    now = datetime.now(UTC)
    if as_json:
        document = status_document(
            str(run_dir),
            records,
            meta,
            summary,
            now=now,
            group_by=columns,
            all_rows=all_rows,
            counts=counts,
        )
        click.echo(json.dumps(document, indent=2, ensure_ascii=True))
    else:
        title = f"Run {run_dir}"
        facts = [
            f"sheet {Path(meta['sheet']).name}" if meta.get("sheet") else "",
            meta.get("model"),
        ]
        if any(facts):
            title += " (" + ", ".join(f for f in facts if f) + ")"
        text = render_status(
            title, records, summary, now=now, all_rows=all_rows, group_by=columns, counts=counts
        )
        echo(text, nl=False)
    done = set(counts) <= {Status.SUCCEEDED}
    ctx.exit(exit_codes.OK if done else exit_codes.ROWS_NEED_ATTENTION)
