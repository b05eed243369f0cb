"""Fresh results during a run: only what changed is copied and rebuilt, and it matches."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
from pathlib import Path
from unittest import mock

from batchwan.checks.validation import check_rows
from batchwan.execution import write_final_outputs, write_outputs
from batchwan.outputs.results import results_text
from batchwan.pool.refresh import FreshRecords
from batchwan.sheet.jobfile import load_source
from batchwan.sheet.loader import read_sheet
from batchwan.store import records
from batchwan.store.ledger import Ledger
from batchwan.values import Status
from tests.runhelpers import write_sheet


def _ledger(tmp_path: Path, count: int) -> Ledger:
    spec = load_source(write_sheet(tmp_path, count))
    rows = check_rows(read_sheet(spec.sheet), spec)
    ledger = Ledger(tmp_path / "run")
    ledger.claim(tmp_path / "sheet.csv", "wan2.5-i2v-preview")
    ledger.sync_sheet(rows, [0.25] * len(rows), [])
    return ledger


async def test_fresh_records_follow_the_ledger_copying_only_what_changed(tmp_path: Path) -> None:
    """After each batch of transitions the refreshed rows equal a full rebuild, while the
    whole record is taken once and each later refresh copies only the entries written."""
    ledger = _ledger(tmp_path, 30)
    try:
        keys = [row.key for row in ledger.sheet_rows]
        fresh = FreshRecords(ledger)
        with mock.patch.object(copy, "copy", side_effect=copy.copy) as copies:  # a spy
            assert fresh.take()
            # The first refresh takes the whole record, sharing its entries (the store replaces
            # an entry, never changes one), so nothing is copied at all.
            assert copies.call_count == 0
            assert (await fresh.build()).records() == ledger.records()
            copies.reset_mock()
            await ledger.begin_create(keys[3])
            await ledger.create_accepted(keys[3], "task-3")
            await ledger.begin_create(keys[7])
            await ledger.create_accepted(keys[7], "task-7")
            fresh.take()
            assert copies.call_count == 2  # two entries written, two copied
            assert (await fresh.build()).records() == ledger.records()
            copies.reset_mock()
            await ledger.task_finished(keys[3], Status.SUCCEEDED, video_url="https://v/3.mp4")
            await ledger.note(keys[3], None, video_file="videos/3.mp4")
            fresh.take()
            assert copies.call_count == 1
            got = (await fresh.build()).records()
            assert got == ledger.records()
            copies.reset_mock()
            assert (got[3].status, got[3].video_file) == (Status.SUCCEEDED, "videos/3.mp4")
            assert got[7].status is Status.RUNNING
            assert not fresh.take()  # nothing written since: nothing copied, nothing to write
            assert copies.call_count == 0
    finally:
        ledger.close()


async def test_a_snapshot_handed_out_does_not_change_under_its_reader(tmp_path: Path) -> None:
    """Rows handed to the writing thread keep their values while the ledger moves on."""
    ledger = _ledger(tmp_path, 3)
    try:
        key = ledger.sheet_rows[0].key
        fresh = FreshRecords(ledger)
        fresh.take()
        handed = await fresh.build()
        await ledger.begin_create(key)
        await ledger.create_accepted(key, "task-0")
        fresh.take()
        assert handed.records()[0].status is Status.PENDING
        assert (await fresh.build()).records()[0].status is Status.RUNNING
    finally:
        ledger.close()


async def test_refreshed_files_match_a_full_rewrite(tmp_path: Path) -> None:
    """results.csv and summary.json from the refresh hold what a full rewrite writes, after
    the first refresh and after a later one that rebuilt only the rows that changed."""
    ledger = _ledger(tmp_path, 1200)  # more than one slice
    run_dir = tmp_path / "run"
    try:
        keys = [row.key for row in ledger.sheet_rows]
        fresh = FreshRecords(ledger)
        for step in range(2):
            await ledger.begin_create(keys[step * 700])
            await ledger.create_accepted(keys[step * 700], f"task-{step}")
            assert fresh.take()
            await fresh.write()
            ours = (run_dir / "results.csv").read_bytes()
            summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
            write_outputs(ledger)
            assert ours == (run_dir / "results.csv").read_bytes()
            full = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
            for written in (summary, full):  # when each was written differs, nothing else
                for name in ("updated_at", "wall_seconds", "running_seconds", "elapsed_seconds"):
                    del written["timings"][name]
            assert summary == full
        assert b"task-1" in ours
    finally:
        ledger.close()


async def test_the_final_outputs_take_the_refreshed_rows_building_only_what_changed(
    tmp_path: Path,
) -> None:
    """At the end, the rows a refresh built are brought up to date and taken: only the rows
    written since are built again, and the files equal a full rewrite."""
    ledger = _ledger(tmp_path, 1200)
    run_dir = tmp_path / "run"
    try:
        keys = [row.key for row in ledger.sheet_rows]
        fresh = FreshRecords(ledger)
        assert fresh.take()
        await fresh.write()
        for n in (5, 900):
            await ledger.begin_create(keys[n])
            await ledger.create_accepted(keys[n], f"task-{n}")
        with mock.patch.object(records, "_record", side_effect=records._record) as built:
            view, problems = write_final_outputs(ledger, fresh=fresh)
        assert built.call_count == 2
        assert problems == []
        assert view.records == ledger.records()
        ours = (run_dir / "results.csv").read_bytes()
        write_final_outputs(ledger)  # built from the record, every row again
        assert ours == (run_dir / "results.csv").read_bytes()
        assert b"task-900" in ours
    finally:
        ledger.close()


async def test_a_refresh_cut_off_mid_build_leaves_the_end_to_build_every_row(
    tmp_path: Path,
) -> None:
    """A refresh cancelled between two slices of its first build has no rows to hand over:
    the end builds every row from the record, and the files equal a full rewrite."""
    ledger = _ledger(tmp_path, 1200)  # three slices
    run_dir = tmp_path / "run"
    try:
        fresh = FreshRecords(ledger)
        fresh.take()
        building = asyncio.create_task(fresh.build())
        await asyncio.sleep(0)  # one slice built
        await asyncio.sleep(0)
        building.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await building
        assert building.cancelled()
        view, _ = write_final_outputs(ledger, fresh=fresh)
        assert view.records == ledger.records()
        written = (run_dir / "results.csv").read_bytes()
        assert written == results_text(ledger.records(), view.columns).encode("utf-8")
    finally:
        ledger.close()


async def test_no_refresh_writes_after_the_end_has_settled(tmp_path: Path) -> None:
    """A refresh late on its thread must not put an older results.csv over the final one."""
    ledger = _ledger(tmp_path, 3)
    results = tmp_path / "run" / "results.csv"
    try:
        fresh = FreshRecords(ledger)
        fresh.take()
        await fresh.build()
        assert fresh.settle() is not None
        results.unlink(missing_ok=True)
        await fresh.write()
        assert not results.exists()
    finally:
        ledger.close()
