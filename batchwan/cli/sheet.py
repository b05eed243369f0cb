"""Reading and checking a sheet for the commands, and saying what is wrong with it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import click

from batchwan.cli.validate_cmd import summary
from batchwan.values import CheckedRow, JobSpec, Status

#: More issues than this on a terminal is noise; `validate --report` lists them all.
MAX_PRINTED_ISSUES = 50


def checked_sheet(
    spec: JobSpec, image_root: Path | None, run_dir: Path | None, *, quiet: bool = False
) -> tuple[list[CheckedRow], list[str]]:
    """Read and validate the sheet; return the rows and the user's own columns, in order.

    With ``run_dir``, fixable images are fixed into ``run_dir/fixed-images``. What was guessed
    in reading it (encoding, separator, headers) is said once, unless ``quiet``.
    """
    from batchwan.checks.validation import check_rows, layout
    from batchwan.sheet.loader import read_spec_sheet

    sheet = read_spec_sheet(spec)
    image_root = image_root or spec.image_root
    columns = layout(sheet, spec)  # the headers as read: `Image URL` is the image, not yours
    for note in () if quiet else (*sheet.notes, *columns.notes):
        click.echo(f"note: {note}", err=True)
    fix_dir = run_dir / "fixed-images" if run_dir is not None else None
    rows = check_rows(sheet, spec, image_root=image_root, fix_dir=fix_dir)
    return rows, list(columns.extra)


def print_issues(rows: Sequence[CheckedRow], *, quiet: bool = False) -> None:
    """Every row problem on stderr (capped), then one line of counts.

    Problems are printed even when quiet: they are what a cron mail is for.
    """
    issues = [issue for row in rows for issue in row.issues]
    for issue in issues[:MAX_PRINTED_ISSUES]:
        click.echo(str(issue), err=True)
    if len(issues) > MAX_PRINTED_ISSUES:
        click.echo(
            f"... and {len(issues) - MAX_PRINTED_ISSUES} more "
            "(`batchwan validate SOURCE --report FILE` lists them all)",
            err=True,
        )
    if not quiet:
        for row in rows:
            for note in row.notes:
                click.echo(f"row {row.position}: {note}", err=True)
    counts = Counter(row.status for row in rows)
    if counts[Status.INVALID] + counts[Status.DUPLICATE] or not quiet:
        click.echo(summary(list(rows)), err=True)
