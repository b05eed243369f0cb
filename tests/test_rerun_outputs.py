"""A rerun that adds rows to a run folder: results.csv gets only the new rows appended, and
every file of the run's end is written from one build of the rows."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import pytest

import batchwan.execution as execution
from batchwan.checks.validation import check_rows
from batchwan.outputs.results import results_text
from batchwan.sheet.jobfile import load_source
from batchwan.sheet.loader import read_sheet
from batchwan.sim.simulator import SimConfig, serve_in_thread
from batchwan.store.records import read_meta, read_records, read_sent_keys, recorded_keys
from batchwan.store.schema import connect
from batchwan.store.sqlite import SqliteStore
from batchwan.values import Status
from tests.runhelpers import fast_options, invoke, read_results, write_sheet


@pytest.fixture(autouse=True)
def _no_refresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the run's last write of results.csv is looked at: no refresh in between."""
    monkeypatch.setattr(execution, "REFRESH_SECONDS", 3600.0)


def _as_rewritten(out: Path) -> bytes:
    """results.csv as a full rewrite from the record would write it."""
    columns = json.loads(read_meta(out)["columns"])
    return results_text(read_records(out), columns).encode("utf-8")


def test_a_rerun_that_adds_rows_appends_them_to_results_csv(tmp_path: Path) -> None:
    """Rows added to the sheet: the same results.csv (not a new file renamed over it) ends in
    them, and it holds exactly what a full rewrite would."""
    sheet = write_sheet(tmp_path, 8)
    out = tmp_path / "run"
    with serve_in_thread(SimConfig(pending_seconds=0, processing_seconds=0)) as sim:
        assert invoke(["run", str(sheet), *fast_options(sim.base_url, out)]).exit_code == 0
        inode = (out / "results.csv").stat().st_ino
        write_sheet(tmp_path, 3, start=9)
        assert invoke(["run", str(sheet), *fast_options(sim.base_url, out)]).exit_code == 0
    assert (out / "results.csv").stat().st_ino == inode
    assert (out / "results.csv").read_bytes() == _as_rewritten(out)
    rows = read_results(out)
    assert [r["row"] for r in rows] == [str(i) for i in range(1, 12)]
    assert {r["status"] for r in rows} == {"succeeded"}


def test_a_rerun_that_changes_an_earlier_row_replaces_results_csv(tmp_path: Path) -> None:
    """A user column edited in row 2 (and rows added): results.csv is replaced whole, with
    the edit in it."""
    sheet = write_sheet(tmp_path, 6)
    out = tmp_path / "run"
    with serve_in_thread(SimConfig(pending_seconds=0, processing_seconds=0)) as sim:
        assert invoke(["run", str(sheet), *fast_options(sim.base_url, out)]).exit_code == 0
        inode = (out / "results.csv").stat().st_ino
        lines = sheet.read_text(encoding="utf-8").splitlines(keepends=True)
        lines[2] = lines[2].replace(",c2", ",edited")
        sheet.write_text("".join(lines), encoding="utf-8")
        write_sheet(tmp_path, 2, start=7)
        assert invoke(["run", str(sheet), *fast_options(sim.base_url, out)]).exit_code == 0
    assert (out / "results.csv").stat().st_ino != inode
    assert (out / "results.csv").read_bytes() == _as_rewritten(out)
    assert read_results(out)[1]["campaign"] == "edited"


def test_the_report_of_a_run_is_the_report_of_its_folder(tmp_path: Path) -> None:
    """The report the run writes from the rows it built (its groups taken from the summary it
    just counted) equals `batchwan report` reading the folder and counting every row again
    (but for the minute it was written)."""
    sheet = write_sheet(tmp_path, 5)
    out = tmp_path / "run"
    with serve_in_thread(SimConfig(seed=3, fail_rate=0.4)) as sim:
        invoke(["run", str(sheet), *fast_options(sim.base_url, out, "--group-by", "campaign")])
    by_run = (out / "report.html").read_text(encoding="utf-8")
    assert 'data-group="by_group"' in by_run
    assert invoke(["report", str(out)]).exit_code == 0
    by_folder = (out / "report.html").read_text(encoding="utf-8")

    def _stable(page: str) -> str:
        start = page.index("report written")
        return page[:start] + page[page.index("</span>", start) :]

    assert _stable(by_run) == _stable(by_folder)


def test_the_keys_sent_from_a_folder_are_read_without_building_records(tmp_path: Path) -> None:
    """read_sent_keys names exactly the rows this folder tried to create or holds a task of,
    and check_sheet and claim see each recorded key once, in sheet order."""
    spec = load_source(write_sheet(tmp_path, 6))
    rows = check_rows(read_sheet(spec.sheet), spec)
    ledger = SqliteStore(tmp_path / "run")
    try:
        ledger.claim(spec.sheet, "wan2.5-i2v-preview")
        ledger.sync_sheet(rows, [0.25] * len(rows), [])
        keys = [row.key for row in rows]

        async def transitions() -> None:
            await ledger.begin_create(keys[1])
            await ledger.create_accepted(keys[1], "task-1")
            await ledger.begin_create(keys[4])
            await ledger.create_settled(keys[4], Status.PENDING, "try again")

        asyncio.run(transitions())
    finally:
        ledger.close()
    out = tmp_path / "run"
    assert sorted(read_sent_keys(out)) == sorted([keys[1], keys[4]])
    with contextlib.closing(connect(out / "state.db", readonly=True)) as conn:
        assert recorded_keys(conn) == keys


def test_the_end_of_a_run_builds_its_rows_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """results.csv, summary.json, report.html and results.xlsx are all written from the rows
    the run built: none of them reads state.db's rows again, and the rows are built once."""
    import batchwan.outputs.report_tables as report_tables
    import batchwan.outputs.statusview as statusview
    from batchwan.store.sqlite import SqliteStore as Store

    def no_reread(*args: object, **kwargs: object) -> None:
        raise AssertionError("the rows were read or counted again")

    monkeypatch.setattr(statusview, "read_records", no_reread)
    # The report's group tables come from the summary just counted, not from a second count.
    monkeypatch.setattr(report_tables, "by_model", no_reread)
    monkeypatch.setattr(report_tables, "by_resolution", no_reread)
    built = []
    real_records = Store.records

    def counted(self: Store) -> list:
        found = real_records(self)
        built.append(id(found))
        return found

    monkeypatch.setattr(Store, "records", counted)
    sheet = write_sheet(tmp_path, 4)
    out = tmp_path / "run"
    with serve_in_thread(SimConfig(pending_seconds=0, processing_seconds=0)) as sim:
        result = invoke(["run", str(sheet), *fast_options(sim.base_url, out), "--xlsx"])
    assert result.exit_code == 0, result.output
    assert "could not write" not in result.output
    for name in ("results.csv", "summary.json", "report.html", "results.xlsx"):
        assert (out / name).is_file()
    assert len(set(built)) == 1  # one list of rows, however often it was asked for
