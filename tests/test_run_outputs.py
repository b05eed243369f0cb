"""What a finished run leaves for people: report.html, results.xlsx, summary.json, status."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

from openpyxl import load_workbook

from batchwan.sim.simulator import SimConfig, serve_in_thread
from tests.runhelpers import KEY, fast_options, invoke, read_results, write_sheet


def test_a_run_writes_report_xlsx_and_summary_that_agree_with_results(tmp_path: Path) -> None:
    """After a run: report.html, results.xlsx (with --xlsx) and summary.json match results.csv."""
    sheet = write_sheet(tmp_path, 12, resolution="720P", duration=10)
    out = tmp_path / "run"
    with serve_in_thread(SimConfig(seed=4, fail_rate=0.25)) as sim:
        result = invoke(["run", str(sheet), *fast_options(sim.base_url, out), "--xlsx"])
    rows = read_results(out)
    failed = sum(r["status"] == "failed" for r in rows)
    assert result.exit_code == (1 if failed else 0)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["succeeded"] == 12 - failed
    assert summary["counts"]["failed"] == failed
    assert summary["cost"]["spent"] == round((12 - failed) * 1.0, 2)  # 10 s x $0.10
    assert summary["video_seconds"]["total"] == 120
    book = load_workbook(out / "results.xlsx", read_only=True)
    try:  # a read-only workbook holds its file open until closed
        values = list(book.active.iter_rows(values_only=True))
    finally:
        book.close()
    assert [str(v) for v in values[0][:3]] == ["row", "id", "status"]
    assert [v[2] for v in values[1:]] == [r["status"] for r in rows]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert rows[0]["task_id"] in page
    assert KEY not in page
    mode = stat.S_IMODE((out / "results.csv").stat().st_mode)
    assert mode & stat.S_IRGRP  # analysts in the same group can read the results


def test_status_reads_a_finished_run_without_network(tmp_path: Path) -> None:
    """`status` on a run folder prints the counts and the rows needing attention; exit 1."""
    sheet = write_sheet(tmp_path, 6)
    out = tmp_path / "run"
    with serve_in_thread(SimConfig(seed=2, fail_rate=0.5)) as sim:
        invoke(["run", str(sheet), *fast_options(sim.base_url, out)])
    rows = read_results(out)
    failed = [r for r in rows if r["status"] == "failed"]
    assert failed  # seed 2 fails some rows
    result = invoke(["status", str(out)])
    assert result.exit_code == 1
    assert f"Needs attention: {len(failed)} rows" in result.output
    for row in failed:
        assert re.search(rf"^\s+{row['row']}\s+{row['id']}\s+failed\s", result.output, re.M)


def test_the_key_is_never_written_to_the_run_folder(tmp_path: Path) -> None:
    """After a run whose key is refused, no file in the run folder holds the key."""
    sheet = write_sheet(tmp_path, 3)
    out = tmp_path / "run"
    with serve_in_thread(SimConfig(api_key="the-right-key-12345")) as sim:
        result = invoke(["run", str(sheet), *fast_options(sim.base_url, out)])
    assert result.exit_code == 4
    assert KEY not in result.output
    for path in out.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


def test_status_rows_lists_every_row_with_its_video_or_error(tmp_path: Path) -> None:
    """`status --rows` prints one line per row: its video file, or why it has none."""
    sheet = write_sheet(tmp_path, 5)
    out = tmp_path / "run"
    with serve_in_thread(SimConfig(seed=2, fail_rate=0.5)) as sim:
        invoke(["run", str(sheet), *fast_options(sim.base_url, out)])
    result = invoke(["status", str(out), "--rows"])
    assert "Rows: 5 rows" in result.output
    for row in read_results(out):
        shown = row["video_file"] or row["error"][:20]
        assert re.search(rf"^\s+{row['row']}\s+{row['id']}\s+{row['status']}\s+", result.output,
                         re.M)  # fmt: skip
        assert shown in result.output


def test_each_run_leaves_a_line_and_rows_keep_their_request(tmp_path: Path) -> None:
    """Every `run` on a folder adds a run line (sent, collected); rows keep model and request."""
    from batchwan.store.records import read_records, read_runs

    out = tmp_path / "run"
    with serve_in_thread(SimConfig(seed=5)) as sim:
        sheet = write_sheet(tmp_path, 3)
        assert invoke(["run", str(sheet), *fast_options(sim.base_url, out)]).exit_code == 0
        write_sheet(tmp_path, 2, start=4)
        assert invoke(["run", str(sheet), *fast_options(sim.base_url, out)]).exit_code == 0
    runs = read_runs(out)
    assert [(r.number, r.sent, r.collected) for r in runs] == [(1, 3, 3), (2, 2, 2)]
    assert all(r.ended_at is not None and r.ended_at >= r.started_at for r in runs)
    records = read_records(out)
    assert {r.model for r in records} == {"wan2.5-i2v-preview"}
    assert records[0].request["image"] == "https://images.example.com/1.jpg"
    assert records[0].request["duration"] == 5
