"""`batchwan validate`: check every row of a sheet against the API's rules, and send nothing."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import click

from batchwan.cli import exit_codes
from batchwan.cli.common import exit_on_errors, fail, leave
from batchwan.errors import InputError
from batchwan.safe_text import clean
from batchwan.values import CheckedRow, Status


def summary(rows: Iterable[CheckedRow]) -> str:
    """One line of counts: ``48 rows: 45 valid, 2 invalid, 1 duplicate``."""
    return counts_line(Counter(row.status for row in rows))


def counts_line(counts: Mapping[Status, int]) -> str:
    """``summary`` from the number of rows of each status."""
    total, duplicates = sum(counts.values()), counts.get(Status.DUPLICATE, 0)
    return (
        f"{total} {'row' if total == 1 else 'rows'}: {counts.get(Status.PENDING, 0)} valid, "
        f"{counts.get(Status.INVALID, 0)} invalid, "
        f"{duplicates} {'duplicate' if duplicates == 1 else 'duplicates'}"
    )


_REPORT_HEADER = ("row", "id", "column", "message")


def write_report(path: Path, rows: Iterable[CheckedRow]) -> None:
    """Write every row problem as CSV: ``row,id,column,message``."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(_REPORT_HEADER)
        for row in rows:
            _report_lines(writer, row)


def _report_lines(writer: Any, row: CheckedRow) -> None:
    from batchwan.outputs.results import as_text_cell

    for issue in row.issues:
        cells = (issue.row, row.row_id, issue.column, issue.message)
        writer.writerow([as_text_cell(str(c)) for c in cells])


#: What the spools below keep in memory before they move to a temporary file.
_SPOOL_BYTES = 4 * 1024 * 1024


class _Said:
    """What `validate` says of each row, kept aside (on disk past a few MB) until every row is
    checked: a sheet that turns out unreadable halfway prints only its error, as before."""

    def __init__(self, report: bool) -> None:
        self.counts: Counter[Status] = Counter()
        self._out = _spool()
        self._report = _spool() if report else None
        self._writer = csv.writer(self._report) if self._report is not None else None
        if self._writer is not None:
            self._writer.writerow(_REPORT_HEADER)

    def add(self, row: CheckedRow) -> None:
        """Count the row, and keep its problems and notes as `validate` prints them."""
        self.counts[row.status] += 1
        if not (row.issues or row.notes):
            return
        from batchwan.checks.validation import describe

        out = self._out
        for issue in row.issues:
            out.write(clean(describe(issue)) + "\n")
        for note in row.notes:
            # Frame notes say what --fix-images did; the others what a model makes of a cell.
            fixed = note.startswith(("image: ", "last_frame: "))
            out.write(clean(f"row {row.position}: {'would fix ' if fixed else ''}{note}") + "\n")
        if self._writer is not None:
            _report_lines(self._writer, row)

    def print_rows(self) -> None:
        """Print what was kept, in row order."""
        self._out.seek(0)
        while chunk := self._out.read(_SPOOL_BYTES):
            click.echo(chunk, nl=False)

    def write_report(self, path: Path) -> None:
        """Write the report kept aside to ``path`` (OSError when it cannot be written)."""
        assert self._report is not None, "no report was asked for"
        self._report.seek(0)
        with path.open("w", newline="", encoding="utf-8") as handle:
            shutil.copyfileobj(self._report, handle, _SPOOL_BYTES)

    def close(self) -> None:
        """Remove what was kept aside."""
        self._out.close()
        if self._report is not None:
            self._report.close()


def _spool() -> IO[str]:
    # newline="": the report's CSV line ends and the messages' own are kept as written.
    return tempfile.SpooledTemporaryFile(
        _SPOOL_BYTES, mode="w+", encoding="utf-8", newline="", prefix="batchwan-validate-"
    )


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except (OSError, RuntimeError):  # a symlink loop is not the report file either
        return False


@contextlib.contextmanager
def _checked(
    source: Path,
    image_root: Path | None,
    fix_images: bool,
    urls: bool,
    report: Path | None,
    tab: str | None = None,
    allow_private: bool = False,
) -> Iterator[Iterable[CheckedRow]]:
    """Every row checked as it is read (with ``urls``, all of them once their remote files are
    fetched); what was guessed in reading the sheet is said on stderr first."""
    from batchwan.cli.sheet import print_notes  # it imports this module's summary
    from batchwan.collector import collector_paused
    from batchwan.pipeline import stream_source
    from batchwan.sheet.jobfile import load_source

    if report is not None:
        for given in (source, load_source(source).sheet):
            if _same_file(report, given):
                # A slip of the tab key would otherwise replace the user's sheet with the report.
                raise InputError(f"--report {report} would overwrite {given}; name another file")
    # validate writes no run folder: fixed copies go to a folder that is removed afterwards.
    overrides = {"image_root": image_root, "tab": tab}
    with stream_source(source, overrides, fix_images=fix_images) as checked:
        print_notes(checked.notes)
        if not urls:
            with collector_paused():  # a million rows, and no cycles among them
                yield checked.rows
            return
        from batchwan.checks.urlcheck import check_urls

        # Each distinct URL is fetched once across the sheet: the rows are all held for that.
        with collector_paused():
            rows = list(checked.rows)
        yield asyncio.run(check_urls(rows, allow_private=allow_private))


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
    said = _Said(report=report_path is not None)
    try:
        with (
            exit_on_errors(),
            _checked(
                source, image_root, fix_images, urls, report_path, tab, allow_private_urls
            ) as rows,
        ):
            for row in rows:
                said.add(row)
        said.print_rows()
        if report_path is not None:
            try:
                said.write_report(report_path)
            except OSError as exc:
                fail(f"cannot write {report_path}: {exc.strerror or exc}", exit_codes.CANNOT_START)
    finally:
        said.close()
    counts = said.counts
    click.echo(counts_line(counts))
    if not counts:  # under cron, an empty sheet must not look like success
        fail(f"{source}: the sheet has no data rows", exit_codes.ROWS_NEED_ATTENTION)
    bad = sum(counts.values()) - counts[Status.PENDING]
    leave(exit_codes.ROWS_NEED_ATTENTION if bad else exit_codes.OK)
