"""Saying what is wrong with a sheet's rows, for the commands."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import click

from batchwan.cli.common import echo
from batchwan.cli.validate_cmd import counts_line
from batchwan.values import CheckedRow, Status

#: More issues than this on a terminal is noise; `validate --report` lists them all.
MAX_PRINTED_ISSUES = 50


def print_notes(notes: Sequence[str], *, quiet: bool = False) -> None:
    """What was guessed in reading the sheet (encoding, separator, headers), said once."""
    if not quiet:
        for note in notes:
            echo(f"note: {note}", err=True)


def print_issues(rows: Sequence[CheckedRow], *, quiet: bool = False) -> None:
    """Every row problem on stderr (capped), then one line of counts.

    Problems are printed even when quiet: they are what a cron mail is for.
    """
    printed = 0  # counted rather than listed: a big sheet may have a million of them
    for row in rows:
        for issue in row.issues:
            printed += 1
            if printed <= MAX_PRINTED_ISSUES:
                echo(str(issue), err=True)
    if printed > MAX_PRINTED_ISSUES:
        click.echo(
            f"... and {printed - MAX_PRINTED_ISSUES} more "
            "(`batchwan validate SOURCE --report FILE` lists them all)",
            err=True,
        )
    if not quiet:
        for row in rows:
            for note in row.notes:
                echo(f"row {row.position}: {note}", err=True)
    counts = Counter(row.status for row in rows)
    if counts[Status.INVALID] + counts[Status.DUPLICATE] or not quiet:
        click.echo(counts_line(counts), err=True)
