"""Runs at the edges: an unreachable provider, a vanished image, a folder that is not ours."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

from batchwan.sim.simulator import SimConfig, serve_in_thread
from tests.runhelpers import fast_options, invoke, read_results, write_sheet


def _closed_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_provider_stops_the_run_early_with_rows_pending(tmp_path: Path) -> None:
    """Connection refused create after create: the run stops, rows stay pending, and says why."""
    sheet = write_sheet(tmp_path, 30)
    out = tmp_path / "run"
    base = f"http://127.0.0.1:{_closed_port()}"
    result = invoke(["run", str(sheet), *fast_options(base, out, "--concurrency", "4")])
    assert result.exit_code == 1
    assert "could not be reached" in result.output
    rows = read_results(out)
    assert {r["status"] for r in rows} == {"pending"}
    assert all("check --base-url" in r["error"] for r in rows)
    assert sum(int(r["attempts"]) for r in rows) <= 8 + 4  # no full round of tries per row


def test_a_run_never_overwrites_its_own_sheet(tmp_path: Path) -> None:
    """A sheet named results.csv inside the run folder is refused (exit 2), not overwritten."""
    sheet = write_sheet(tmp_path, 2, name="results.csv")
    before = sheet.read_bytes()
    result = invoke(["run", str(sheet), "--simulate", "--out", str(tmp_path)], key=None)
    assert result.exit_code == 2
    assert "would be overwritten" in result.output
    assert sheet.read_bytes() == before


def test_a_sheet_without_data_rows_says_so(tmp_path: Path) -> None:
    """A header-only sheet runs to nothing, says so in words, and exits 1 (cron must notice)."""
    sheet = tmp_path / "empty.csv"
    sheet.write_text("prompt,image\n", encoding="utf-8")
    result = invoke(["run", str(sheet), "--simulate", "--out", str(tmp_path / "r")], key=None)
    assert result.exit_code == 1
    assert "the sheet has no data rows" in result.output


def test_another_programs_sqlite_file_is_not_adopted(tmp_path: Path) -> None:
    """A state.db with someone else's tables: exit 2, and the file is left exactly as it was."""
    out = tmp_path / "other"
    out.mkdir()
    foreign = out / "state.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE x (a)")
    conn.close()
    before = foreign.read_bytes()
    sheet = write_sheet(tmp_path, 2)
    result = invoke(["run", str(sheet), "--simulate", "--out", str(out)], key=None)
    assert result.exit_code == 2
    assert "not a batchwan run record" in result.output
    assert foreign.read_bytes() == before


def test_a_wrong_endpoint_stops_the_run_with_rows_pending(tmp_path: Path) -> None:
    """A 404 on a create (wrong base URL or model): stop at once, rows pending, say the fix."""
    sheet = write_sheet(tmp_path, 6)
    out = tmp_path / "run"
    with serve_in_thread(SimConfig()) as sim:
        wrong = sim.base_url + "/not-the-api"
        result = invoke(["run", str(sheet), *fast_options(wrong, out, "--concurrency", "1")])
        assert sim.sim.stats()["tasks_created"] == 0
    assert result.exit_code == 1
    assert "check --base-url and --model" in result.output
    rows = read_results(out)
    assert {r["status"] for r in rows} == {"pending"}
    assert sum(int(r["attempts"]) for r in rows) == 1
