"""`batchwan validate`: check every row of a sheet against the API's rules, and send nothing."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path

import click

from batchwan.cli import exit_codes
from batchwan.cli.common import echo, exit_on_errors, fail, leave
from batchwan.errors import InputError
from batchwan.values import CheckedRow, Status


def summary(rows: list[CheckedRow]) -> str:
    """One line of counts: ``48 rows: 45 valid, 2 invalid, 1 duplicate``."""
    counts = {status: 0 for status in (Status.PENDING, Status.INVALID, Status.DUPLICATE)}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    total, duplicates = len(rows), counts[Status.DUPLICATE]
    return (
        f"{total} {'row' if total == 1 else 'rows'}: {counts[Status.PENDING]} valid, "
        f"{counts[Status.INVALID]} invalid, "
        f"{duplicates} {'duplicate' if duplicates == 1 else 'duplicates'}"
    )


def write_report(path: Path, rows: list[CheckedRow]) -> None:
    """Write every row problem as CSV: ``row,id,column,message``."""
    from batchwan.outputs.results import as_text_cell

    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", "id", "column", "message"])
        for row in rows:
            for issue in row.issues:
                cells = (issue.row, row.row_id, issue.column, issue.message)
                writer.writerow([as_text_cell(str(c)) for c in cells])


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except (OSError, RuntimeError):  # a symlink loop is not the report file either
        return False


def _check(
    source: Path,
    image_root: Path | None,
    fix_images: bool,
    urls: bool,
    report: Path | None,
    tab: str | None = None,
    allow_private: bool = False,
) -> list[CheckedRow]:
    """Every row checked (and with ``urls`` its remote files fetched); what was guessed in
    reading the sheet is said on stderr."""
    from batchwan.cli.sheet import print_notes  # it imports this module's summary
    from batchwan.pipeline import check_source
    from batchwan.sheet.jobfile import load_source

    if report is not None:
        for given in (source, load_source(source).sheet):
            if _same_file(report, given):
                # A slip of the tab key would otherwise replace the user's sheet with the report.
                raise InputError(f"--report {report} would overwrite {given}; name another file")
    # validate writes no run folder: fixed copies go to a folder that is removed afterwards.
    prepared = check_source(source, {"image_root": image_root, "tab": tab}, fix_images=fix_images)
    print_notes(prepared.notes)
    rows = prepared.rows
    if urls:
        from batchwan.checks.urlcheck import check_urls

        rows = asyncio.run(check_urls(rows, allow_private=allow_private))
    return rows


@click.command()
@click.argument("source", type=click.Path(path_type=Path))
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write every problem to this CSV file (row,id,column,message).",
)
@click.option(
    "--check-urls",
    "urls",
    is_flag=True,
    help="Fetch each image and audio URL: reachable, right type, size, length of audio.",
)
@click.option(
    "--image-root",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Allow local images anywhere inside DIR.  [default: the sheet's folder]",
)
@click.option(
    "--fix-images",
    is_flag=True,
    help="Say what `run --fix-images` would do to each image it can mend.",
)
@click.option("--tab", help="The worksheet of an .xlsx workbook to read (default: the first).")
@click.option(
    "--allow-private-urls",
    is_flag=True,
    help="With --check-urls, also fetch loopback, private and link-local addresses.",
)
def validate(
    source: Path,
    report_path: Path | None,
    urls: bool,
    image_root: Path | None,
    fix_images: bool,
    tab: str | None,
    allow_private_urls: bool,
) -> None:
    """Check every row of SOURCE against the API's rules, and send nothing.

    SOURCE is a sheet (.csv, .tsv, .xlsx, .jsonl, .yaml) or a job file. Every problem of every
    row is printed, one per line, then a summary. Exit status: 0 when every row is valid, 1 when
    some row is invalid or a duplicate, 2 when SOURCE cannot be read.

    \b
    Example:
      $ batchwan validate samples/mistakes.csv --report problems.csv
      row 2: duration: wan2.5-i2v-preview takes 5 or 10, got 7
      ...
      11 rows: 3 valid, 7 invalid, 1 duplicate
    """
    from batchwan.checks.validation import describe

    with exit_on_errors():
        rows = _check(source, image_root, fix_images, urls, report_path, tab, allow_private_urls)
    for row in rows:
        for issue in row.issues:
            echo(describe(issue))
        for note in row.notes:
            # Frame notes say what --fix-images did; the others what a model makes of a cell.
            fixed = note.startswith(("image: ", "last_frame: "))
            echo(f"row {row.position}: {'would fix ' if fixed else ''}{note}")
    if report_path is not None:
        try:
            write_report(report_path, rows)
        except OSError as exc:
            fail(f"cannot write {report_path}: {exc.strerror or exc}", exit_codes.CANNOT_START)
    click.echo(summary(rows))
    if not rows:  # under cron, an empty sheet must not look like success
        fail(f"{source}: the sheet has no data rows", exit_codes.ROWS_NEED_ATTENTION)
    leave(exit_codes.for_checked(rows))
