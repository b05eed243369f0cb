"""Helpers for the store tests: checked rows from a real sheet, and a store opened on them."""

from __future__ import annotations

from pathlib import Path

from batchwan.checks.validation import check_rows
from batchwan.sheet.jobfile import load_source
from batchwan.sheet.loader import read_sheet
from batchwan.store.sqlite import SqliteStore
from batchwan.values import CheckedRow
from tests.runhelpers import write_sheet

MODEL = "wan2.5-i2v-preview"
ROW_COST = 0.25  # a 5 s 480P clip


def checked_rows(folder: Path, count: int, *, start: int = 1) -> list[CheckedRow]:
    """Append ``count`` rows to ``folder``/sheet.csv and return every row of it, checked."""
    folder.mkdir(parents=True, exist_ok=True)
    spec = load_source(write_sheet(folder, count, start=start))
    return check_rows(read_sheet(spec.sheet), spec)


def open_sqlite(run_dir: Path, rows: list[CheckedRow]) -> SqliteStore:
    """A SQLite store tied to sheet.csv beside ``run_dir``, with ``rows`` recorded."""
    store = SqliteStore(run_dir)
    store.claim(run_dir.parent / "sheet.csv", MODEL, keys=[row.key for row in rows])
    store.sync_sheet(rows, [ROW_COST] * len(rows), [])
    return store
