"""Reading a shared run from PostgreSQL, for status, report and results on any machine.

A row marked "sending" is shown ``running`` while the runner that marked it holds its lease,
and ``unknown`` once that runner is gone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator
from dataclasses import replace
from typing import Any

import psycopg
from psycopg.rows import dict_row

from batchwan.errors import StateError
from batchwan.store.pgschema import check_url
from batchwan.store.schema import TaskEntry, run_line
from batchwan.values import RowRecord, RunLine, Status

BEING_SENT = "the create is being sent now"


@contextlib.contextmanager
def _connect(url: str) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    try:
        conn = psycopg.connect(check_url(url), autocommit=True, row_factory=dict_row)
    except psycopg.Error as exc:
        raise StateError(f"cannot reach the shared store {url}: {exc}") from None
    with conn:
        yield conn


def read_meta(url: str, run: str) -> dict[str, str]:
    """The shared run's metadata."""
    with _connect(url) as conn:
        rows = conn.execute("SELECT name, value FROM bw_meta WHERE run = %s", (run,))
        return {r["name"]: r["value"] for r in rows}


def _entries(conn: psycopg.Connection[dict[str, Any]], run: str) -> dict[str, TaskEntry]:
    """Every row's entry, with mid-send rows of live runners shown as running."""
    live = {
        r["runner"]
        for r in conn.execute(
            "SELECT runner FROM bw_runners WHERE run = %s AND lease >= now()", (run,)
        )
    }
    entries = {}
    for r in conn.execute("SELECT * FROM bw_tasks WHERE run = %s", (run,)):
        entry = TaskEntry.from_db(r)
        if entry.sending and r["owner"] in live:
            entry = replace(entry, sending=False, status=Status.RUNNING, error=BEING_SENT)
        entries[entry.key] = entry
    return entries


def read_records(url: str, run: str, statuses: Collection[Status] | None = None) -> list[RowRecord]:
    """Every row of the shared run's sheet with what the record knows, in sheet order."""
    from batchwan.store.records import records_from_rows

    with _connect(url) as conn:
        entries = _entries(conn, run)
        rows = conn.execute(
            "SELECT * FROM bw_sheet_rows WHERE run = %s ORDER BY position", (run,)
        ).fetchall()
    if not rows and not entries:
        raise StateError(f"the shared store holds no run named {run!r}")
    records = records_from_rows(rows, entries, live=False)
    return [r for r in records if statuses is None or r.status in statuses]


def committed_cost(url: str, run: str) -> float:
    """USD of every create of the shared run that was or may have been billed."""
    with _connect(url) as conn:
        return sum(
            TaskEntry.from_db(r).committed
            for r in conn.execute("SELECT * FROM bw_tasks WHERE run = %s", (run,))
        )


def recorded_keys(url: str, run: str) -> list[str]:
    """The row keys the shared run's sheet holds."""
    with _connect(url) as conn:
        rows = conn.execute("SELECT DISTINCT key FROM bw_sheet_rows WHERE run = %s", (run,))
        return [r["key"] for r in rows]


def read_runs(url: str, run: str) -> list[RunLine]:
    """Every invocation of `run` on the shared run, by any runner, oldest first."""
    with _connect(url) as conn:
        rows = conn.execute(
            "SELECT * FROM bw_run_lines WHERE run = %s ORDER BY number", (run,)
        ).fetchall()
    return [run_line(r) for r in rows]
