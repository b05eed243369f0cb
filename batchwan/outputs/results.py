"""results.csv and summary.json, built from the run's record.

summary.json is replaced whole each time. results.csv is too, unless everything it already
holds is, byte for byte, the start of what it must hold now: then only the new tail is appended
(a rerun that adds rows to a big sheet writes only those rows). See ``write_results_text``.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import os
import re
import statistics
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from batchwan.atomic import atomic_writer, write_text_atomic
from batchwan.outputs.cells import FORMULA_FIRST, Cell, as_text_cell, csv_text, request_value
from batchwan.outputs.groups import Tally, breakdowns, stored_group_by
from batchwan.values import COMMITTED, RowRecord, RunLine, Status

__all__ = ["LEADING_COLUMNS", "as_text_cell", "results_table", "summarize", "typed_table"]

RESULTS_FILE = "results.csv"
SUMMARY_FILE = "summary.json"

#: The interface's columns, first and in this order.
LEADING_COLUMNS: tuple[str, ...] = (
    "row",
    "id",
    "status",
    "task_id",
    "video_url",
    "video_file",
    "error",
    "attempts",
    "submitted_at",
    "finished_at",
)

#: The request as sent comes next: these fields always, in this order ...
REQUEST_COLUMNS: tuple[str, ...] = ("model", "prompt", "image", "resolution", "duration", "seed")
#: ... then these when a row sets them, then any other field in first-seen order.
OPTIONAL_REQUEST_COLUMNS: tuple[str, ...] = (
    "size",
    "negative_prompt",
    "audio",
    "audio_url",
    "prompt_extend",
    "safety_filter",
)
#: After the request: the row's cost and its line in the spreadsheet program.
TAIL_COLUMNS: tuple[str, ...] = ("cost", "line")

#: What makes csv.writer quote a cell (besides the comma): a quote or a line break.
_NEEDS_QUOTES = re.compile(r'["\r\n]')


def _request_columns(records: Sequence[RowRecord]) -> list[str]:
    seen: dict[str, None] = {}
    for r in records:
        seen.update(dict.fromkeys(r.request))
    optional = [name for name in OPTIONAL_REQUEST_COLUMNS if name in seen]
    known = {*REQUEST_COLUMNS, *OPTIONAL_REQUEST_COLUMNS}
    others = [name for name in seen if name not in known]
    return [*REQUEST_COLUMNS, *optional, *others]


def own_columns(records: Sequence[RowRecord], extra_columns: Sequence[str] = ()) -> list[str]:
    """The sheet's own columns: those named, then any others the records carry, first seen."""
    # Columns the caller did not name still get written, in the order first seen.
    seen = dict.fromkeys(itertools.chain.from_iterable(r.extra for r in records))
    return [*extra_columns, *(name for name in seen if name not in extra_columns)]


def _own_header(name: str, taken: set[str]) -> str:
    """An own column named like one of ours (say ``cost``) keeps its values under a new name."""
    while name in taken:
        name = f"{name} (sheet)"
    return name


def _request_cell(r: RowRecord, name: str) -> Cell:
    if name == "model":
        return r.model or request_value(r.request.get("model"))
    if name in ("image", "prompt"):  # as sent (the image as the sheet gave it), else the row's
        sent = request_value(r.request.get(name))
        if isinstance(sent, str) and sent.startswith("data:") and len(sent) > 80:
            sent = f"{sent[:40]}... ({len(sent)} characters)"  # never the base64 itself
        return sent if sent not in (None, "") else (r.image if name == "image" else r.prompt)
    if name == "resolution":
        return r.resolution
    if name == "duration":
        return r.duration
    return request_value(r.request.get(name))


def request_columns_of(records: Sequence[RowRecord]) -> list[str]:
    """The request's columns for these rows: the usual ones, then what some row set."""
    return _request_columns(records)


def _layout(
    records: Sequence[RowRecord],
    extra_columns: Sequence[str],
    request_columns: Sequence[str] | None,
) -> tuple[list[str], list[str], list[str]]:
    """(header, request columns, the sheet's own columns) of the results of ``records``."""
    if request_columns is None:
        request_columns = _request_columns(records)
    own = own_columns(records, extra_columns)
    taken = {*LEADING_COLUMNS, *request_columns, *TAIL_COLUMNS}
    own_names = []
    for name in own:
        header_name = _own_header(name, taken)
        taken.add(header_name)
        own_names.append(header_name)
    header = [*LEADING_COLUMNS, *request_columns, *TAIL_COLUMNS, *own_names]
    return header, list(request_columns), own


def _typed_rows(
    records: Iterable[RowRecord], request_columns: Sequence[str], own: Sequence[str]
) -> Iterator[list[Cell]]:
    """One typed row per record, made as it is asked for (a big sheet is never all in memory)."""
    for r in records:
        yield [
            r.position,
            r.row_id,
            r.status.value,
            r.task_id,
            r.video_url,
            r.video_file,
            r.error,
            r.attempts,
            r.submitted_at,
            r.finished_at,
            *[_request_cell(r, name) for name in request_columns],
            round(r.cost, 4),
            r.line,
            *[r.extra.get(name, "") for name in own],
        ]


def _text_rows(
    records: Iterable[RowRecord], request_columns: Sequence[str], own: Sequence[str]
) -> Iterator[list[str]]:
    """``csv_text`` of every cell of ``_typed_rows``, made as it is asked for.

    The same text, with the work per cell cut: this runs for every cell of a big sheet. Text
    that cannot start a formula is taken as it is, a time is rendered once per distinct second
    and an amount once per distinct value; the usual request fields are read inline, and only
    unusual values take ``_request_cell``.
    """
    usual = tuple(request_columns[: len(REQUEST_COLUMNS)]) == REQUEST_COLUMNS
    rest = request_columns[len(REQUEST_COLUMNS) :] if usual else request_columns
    formula_first = FORMULA_FIRST
    times: dict[datetime, str] = {}  # UTC times to the second: a few hundred in a big run
    costs: dict[float, str] = {}  # a row's cost: a few amounts in a big run

    def when(value: datetime | None) -> Cell:
        if value is None:
            return None
        if value.tzinfo is not UTC:  # only UTC times are kept: equal times of other zones
            return csv_text(value)  # would share one text but not print the same
        text = times.get(value)
        if text is None:
            text = times[value] = csv_text(value)
        return text

    for r in records:
        cost: Cell = r.cost
        if type(cost) is float and cost > 0.0:  # rounding a float is dear: once per amount
            cost = costs.get(cost) or costs.setdefault(cost, csv_text(round(cost, 4)))
        else:  # zero (0.0 and -0.0 are one key but two texts), or not a float
            cost = round(r.cost, 4)
        # Times and amounts above zero come rendered: their text starts with a digit (or is
        # "inf"), never a formula, so the pass below leaves it as it is.
        cells: list[Cell] = [
            r.position, r.row_id, r.status.value, r.task_id, r.video_url, r.video_file, r.error,
            r.attempts, when(r.submitted_at), when(r.finished_at),
        ]  # fmt: skip
        if usual:
            req = r.request
            prompt, image, seed = req.get("prompt"), req.get("image"), req.get("seed")
            cells += (
                r.model or _request_cell(r, "model"),
                prompt if type(prompt) is str and prompt and prompt[:5] != "data:"
                else _request_cell(r, "prompt"),
                image if type(image) is str and image and image[:5] != "data:"
                else _request_cell(r, "image"),
                r.resolution,
                r.duration,
                None if seed is None else _request_cell(r, "seed"),
            )  # fmt: skip
        if rest:
            cells += [_request_cell(r, name) for name in rest]
        cells += (cost, r.line)
        if own:
            extra = r.extra
            cells += [extra.get(name, "") for name in own]
        yield [
            c if type(c) is str and c[:1] not in formula_first
            else "" if c is None else str(c) if type(c) is int else csv_text(c)
            for c in cells
        ]  # fmt: skip


def typed_table(
    records: Sequence[RowRecord],
    extra_columns: Sequence[str] = (),
    request_columns: Sequence[str] | None = None,
) -> tuple[list[str], list[list[Cell]]]:
    """The header and typed rows of the results: numbers, times and text, not yet escaped.

    ``request_columns`` fixes the request's columns (a refresh renders a few rows at a time
    under the header of all of them); by default they are worked out from ``records``.
    """
    header, request_columns, own = _layout(records, extra_columns, request_columns)
    return header, list(_typed_rows(records, request_columns, own))


def results_table(
    records: Sequence[RowRecord],
    extra_columns: Sequence[str] = (),
    request_columns: Sequence[str] | None = None,
) -> tuple[list[str], list[list[str]]]:
    """The header and rows of results.csv, every cell (the header too) safe to open in a
    spreadsheet, plain numbers left as numbers."""
    header, request_columns, own = _layout(records, extra_columns, request_columns)
    return [as_text_cell(name) for name in header], list(_text_rows(records, request_columns, own))


def results_text(records: Sequence[RowRecord], extra_columns: Sequence[str] = ()) -> str:
    """The whole of results.csv as text: its header line, then one line per row."""
    header, request_columns, own = _layout(records, extra_columns, None)
    buffer = io.StringIO()
    write = buffer.write
    for line in _csv_lines([[as_text_cell(name) for name in header]]):
        write(line)
    for line in _csv_lines(_text_rows(records, request_columns, own)):  # one row at a time
        write(line)
    return buffer.getvalue()


def results_lines(
    records: Sequence[RowRecord], extra_columns: Sequence[str], request_columns: Sequence[str]
) -> tuple[str, list[str]]:
    """results.csv's header line and each row's line (with its line break), as
    ``results_text`` writes them, under the given columns."""
    header, request_columns, own = _layout(records, extra_columns, request_columns)
    (head,) = _csv_lines([[as_text_cell(name) for name in header]])
    return head, list(_csv_lines(_text_rows(records, request_columns, own)))


def _csv_lines(rows: Iterable[list[str]]) -> Iterator[str]:
    """Each row as the csv module writes it; most rows need no quoting, and their cells joined
    are the writer's line. A cell with a comma, a quote or a line break anywhere goes through
    the writer, which quotes it."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for cells in rows:
        line = ",".join(cells)
        if line.count(",") == len(cells) - 1 and not _NEEDS_QUOTES.search(line):
            yield line + "\r\n"
            continue
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(cells)
        yield buffer.getvalue()


def write_results_csv(
    run_dir: Path, records: Sequence[RowRecord], extra_columns: Sequence[str] = ()
) -> Path:
    """Bring results.csv up to date: append the new tail, or replace it in one step."""
    path = run_dir / RESULTS_FILE
    write_results_text(path, results_text(records, extra_columns))
    return path


def write_results_text(path: Path, text: str) -> str:
    """Make ``path`` hold ``text``; say how: "unchanged", "appended" or "replaced".

    When the file on disk is, byte for byte, the start of ``text`` (the rows written before are
    unchanged and in the same order, and only rows were added), only the rest is appended, in
    one write, then made durable. Anything else (a changed row, a new column, a shorter sheet)
    replaces the file whole (write beside, then rename). A crash in the middle of an append can
    leave its last line cut; the file is then still the start of what it must hold, and the
    next write completes it.
    """
    data = text.encode("utf-8")
    done = _append_tail(path, data)
    if done is not None:
        return done
    with atomic_writer(path, newline="") as handle:
        handle.write(text)
    return "replaced"


def _append_tail(path: Path, data: bytes) -> str | None:
    """Append what ``data`` has beyond the file on disk when the file is its exact start;
    None when it is not (or cannot be read), and the file must be replaced."""
    try:
        fd = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        size = os.fstat(fd).st_size
        if size == 0 or size > len(data) or not _same_bytes(fd, data, size):
            return None
        tail = data[size:]
        if not tail:
            return "unchanged"
        try:
            written = os.pwrite(fd, tail, size)
        except OSError:
            written = -1
        if written != len(tail):  # a full disk: leave the old file whole, then replace it
            os.ftruncate(fd, size)
            return None
        os.fsync(fd)
        return "appended"
    finally:
        os.close(fd)


def _same_bytes(fd: int, data: bytes, size: int) -> bool:
    """Whether the first ``size`` bytes of the open file equal those of ``data``."""
    chunk = 1 << 20
    view = memoryview(data)
    offset = 0
    while offset < size:
        part = os.pread(fd, min(chunk, size - offset), offset)
        if not part or view[offset : offset + len(part)] != part:
            return False
        offset += len(part)
    return True


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The ``fraction`` quantile by linear interpolation between the closest ranks (as numpy's
    default and spreadsheets' PERCENTILE do); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = fraction * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def run_lines(runs: Sequence[RunLine], updated: datetime | None) -> list[dict[str, Any]]:
    """One entry per invocation of `run`: start, end, seconds spent, rows sent and collected.

    The last run, still going (no end yet), counts until ``updated``; an earlier one that never
    ended (a crash) counts nothing, since when it stopped is not known.
    """
    lines = []
    for i, run in enumerate(runs):
        end = run.ended_at
        if end is None and i == len(runs) - 1:
            end = updated
        seconds = max((end - run.started_at).total_seconds(), 0.0) if end else 0.0
        lines.append(
            {
                "number": run.number,
                "started_at": _iso(run.started_at),
                "ended_at": _iso(run.ended_at),
                "seconds": round(seconds, 3),
                "sent": run.sent,
                "collected": run.collected,
            }
        )
    return lines


def _timings(
    meta: Mapping[str, str], runs: Sequence[RunLine], renders: Sequence[float]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    first = meta.get("started_at") or meta.get("run_started_at")
    updated = meta.get("updated_at") or meta.get("run_started_at") or first
    lines = run_lines(runs, _parse(updated))
    if lines:
        running: float | None = round(sum(line["seconds"] for line in lines), 3)
    else:  # a record from before runs were kept: the last invocation is all that is known
        start, end = _parse(meta.get("run_started_at") or first), _parse(updated)
        running = (end - start).total_seconds() if start and end else None
    start_at, end_at = _parse(first), _parse(updated)
    return {
        "started_at": first,
        "updated_at": updated,
        "last_run_started_at": meta.get("run_started_at") or first,
        "runs": len(lines),
        # Time spent running, summed over runs: cron's idle hours between runs do not count.
        "running_seconds": running,
        "wall_seconds": running,
        "elapsed_seconds": (end_at - start_at).total_seconds() if start_at and end_at else None,
        "render_seconds_median": statistics.median(renders) if renders else None,
        "render_seconds_p90": percentile(renders, 0.9),
    }, lines


def run_summary(
    records: Sequence[RowRecord], meta: Mapping[str, str], run_dir: Path, committed: float
) -> dict[str, Any]:
    """summary.json of a run: ``summarize`` with the run lines from the record and the store's
    committed cost (it also holds earlier attempts that may have been billed)."""
    from batchwan.errors import StateError
    from batchwan.store.records import read_runs

    try:
        runs = read_runs(run_dir)
    except StateError:  # the record itself went missing: the run is stopping for that reason
        runs = []
    summary = summarize(records, meta, runs=runs)
    summary["cost"]["committed"] = round(committed, 2)
    return summary


def summarize(
    records: Sequence[RowRecord],
    meta: Mapping[str, str],
    *,
    runs: Sequence[RunLine] = (),
    group_by: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The content of summary.json: counts, video seconds, cost, timings, runs, breakdowns.

    ``group_by`` defaults to the columns the run was started with (the record's meta).
    """
    counts = {status.value: 0 for status in Status}
    by_resolution: dict[str, int] = {}
    estimated = committed = spent = 0.0
    tally = Tally.of(records)  # one pass over the rows, shared with the breakdowns
    for (_, resolution, status, duration, cost), rows in tally.kinds.items():
        counts[status.value] += rows
        if status in (Status.INVALID, Status.DUPLICATE):
            continue
        by_resolution[resolution] = by_resolution.get(resolution, 0) + duration * rows
        estimated += cost * rows
        if status in COMMITTED:
            committed += cost * rows
        if status is Status.SUCCEEDED:
            spent += cost * rows
    renders = [seconds for part in tally.renders.values() for seconds in part]
    max_cost = meta.get("max_cost")
    columns = stored_group_by(meta) if group_by is None else tuple(group_by)
    timings, lines = _timings(meta, runs, renders)
    return {
        "sheet": meta.get("sheet"),
        "model": meta.get("model"),
        "rows": len(records),
        "counts": counts,
        "video_seconds": {"total": sum(by_resolution.values()), "by_resolution": by_resolution},
        "cost": {
            "currency": "USD",
            "estimated": round(estimated, 2),
            "committed": round(committed, 2),
            "spent": round(spent, 2),
            "max_cost": float(max_cost) if max_cost else None,
        },
        "timings": timings,
        "runs": lines,
        "group_by": list(columns),
        "breakdowns": breakdowns(records, columns, tally),
    }


def write_summary(run_dir: Path, summary: Mapping[str, Any]) -> Path:
    """Replace summary.json in one step."""
    path = run_dir / SUMMARY_FILE
    write_text_atomic(path, json.dumps(summary, indent=2) + "\n")
    return path
