"""The pool contains an unexpected error at its row: the other rows go on, the run ends normally.

The client turns every hostile answer into an error of the tree; these tests pin the second
line of defence, for an error nobody foresaw (a bug, a library raising something new).
"""

from __future__ import annotations

import asyncio
import errno
from pathlib import Path
from typing import Any

import pytest

from batchwan.checks.validation import build_body, check_rows
from batchwan.errors import DiskFull, StateError
from batchwan.pool.runner import Runner, RunOptions
from batchwan.provider.client import Client, open_session
from batchwan.sheet.jobfile import load_source
from batchwan.sheet.loader import read_sheet
from batchwan.sim.simulator import SimConfig, serve
from batchwan.store.ledger import Ledger
from batchwan.values import Status, TaskInfo
from tests.runhelpers import write_sheet


class Breaking:
    """The real client, except that one call of one kind raises what nobody expected."""

    def __init__(self, client: Client, where: str) -> None:
        self.client = client
        self.where = where
        self.broken = False

    def _maybe_break(self, where: str) -> None:
        if where == self.where and not self.broken:
            self.broken = True
            raise RecursionError("maximum recursion depth exceeded")

    async def create(self, body: dict[str, Any], *, model: str | None = None) -> TaskInfo:
        """Create through the real client (the break comes after the send)."""
        info = await self.client.create(body)
        self._maybe_break("create")
        return info

    async def get(self, task_id: str, *, model: str | None = None) -> TaskInfo:
        """Look up through the real client, or break."""
        self._maybe_break("get")
        return await self.client.get(task_id)

    async def download(self, url: str, dest: Path, *, sync_folder: bool = True) -> int:
        """Download through the real client, or break."""
        self._maybe_break("download")
        return await self.client.download(url, dest)


@pytest.mark.parametrize(
    ("where", "first", "says"),
    [
        ("create", Status.UNKNOWN, "the task may exist"),
        ("get", Status.RUNNING, "unexpected error while following it"),
        ("download", Status.SUCCEEDED, "unexpected error while following it"),
    ],
)
async def test_an_unexpected_error_stays_with_its_row(
    tmp_path: Path, where: str, first: Status, says: str
) -> None:
    """One row's RecursionError marks that row; the run is not stopped; the others succeed."""
    spec = load_source(write_sheet(tmp_path, 3))
    rows = check_rows(read_sheet(spec.sheet), spec)
    ledger = Ledger(tmp_path / "run")
    ledger.claim(spec.sheet, "wan2.5-i2v-preview")
    ledger.sync_sheet(rows, [0.25] * len(rows), [])
    options = RunOptions(concurrency=1, rate=1000, poll_interval=0.02)
    try:
        async with serve(SimConfig()) as sim, open_session() as session:
            client = Breaking(Client(session, base_url=sim.base_url, api_key=None), where)
            runner = Runner(ledger, client, options, body_for=build_body)
            outcome = await asyncio.wait_for(runner.run(rows), timeout=30)
            created = sim.sim.stats()["tasks_created"]
        records = ledger.records()
    finally:
        ledger.close()
    assert outcome.stop is None
    assert created == 3
    assert [r.status for r in records] == [first, Status.SUCCEEDED, Status.SUCCEEDED]
    assert says in (records[0].error or "")
    assert all(r.video_file for r in records[1:])


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), DiskFull),
        (StateError("could not write the run's record: database or disk is full"), DiskFull),
        (DiskFull("the disk is full: could not save the video to v.mp4"), DiskFull),
        (OSError(errno.EACCES, "Permission denied"), StateError),
        (StateError("could not write the run's record: database is locked"), StateError),
    ],
)
def test_a_failed_write_is_named_for_what_it_is(error: OSError | StateError, kind: type) -> None:
    """ENOSPC and SQLite's "disk is full" both end the run as DiskFull (exit 1), saying so."""
    from batchwan.pool.runner import _record_error

    result = _record_error(error)
    assert type(result) is kind
    if kind is DiskFull:
        assert "disk is full" in str(result)
        assert "free some space and run again" in str(result)
