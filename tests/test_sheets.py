"""Messy sheets from Excel, LibreOffice and Google Sheets: what reaches the provider, exactly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batchwan.sim.simulator import RunningSimulator, SimConfig, serve_in_thread
from batchwan.store.records import read_records
from tests import messy_sheets
from tests.runhelpers import fast_options, invoke, read_results

URL = messy_sheets.URL


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    """An instant simulator on loopback."""
    with serve_in_thread(SimConfig()) as running:
        yield running


def sent_bodies(sim: RunningSimulator, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The create bodies the simulator receives from now on, in order (a spy, not a fake)."""
    received: list[dict[str, Any]] = []
    original = sim.sim.decide_create

    def spy(model: str, body: dict[str, Any]) -> Any:
        received.append(body)
        return original(model, body)

    monkeypatch.setattr(sim.sim, "decide_create", spy)
    return received


def run(sim: RunningSimulator, source: Path, out: Path, *extra: str, quiet: bool = False) -> Any:
    """`batchwan run` against the simulator (not --quiet unless asked: notes are asserted)."""
    options = [o for o in fast_options(sim.base_url, out, *extra) if quiet or o != "--quiet"]
    return invoke(["run", str(source), *options])


def test_workbook_without_tab_names_the_tab_with_the_header(tmp_path: Path) -> None:
    """A first tab with no header and a second with one: exit 2 naming --tab, not "0 rows"."""
    book = messy_sheets.campaign_workbook(tmp_path)
    result = invoke(["validate", str(book)])
    assert result.exit_code == 2
    assert result.output == (
        f"Error: {book}: its first tab 'Notes' has no header naming prompt or image, but tab "
        "'Shots' has one; pass --tab 'Shots' (or `tab:` in a job file)\n"
    )


def test_workbook_tab_title_links_merges_and_hidden_rows(
    tmp_path: Path, sim: RunningSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Title skipped, links read as URLs, campaign filled down, the hidden row not sent."""
    book = messy_sheets.campaign_workbook(tmp_path)
    bodies = sent_bodies(sim, monkeypatch)
    result = run(sim, book, tmp_path / "r", "--tab", "shots")
    assert result.exit_code == 0, result.output
    assert sorted((b["prompt"], b["image"], b["duration"]) for b in bodies) == [
        ("a blue boat", URL.format(5), 5),
        ("a green hill", URL.format(7), 10),
        ("a red kite", URL.format(4), 5),
    ]
    rows = read_results(tmp_path / "r")
    assert list(rows[0])[-2:] == ["Campaign", "Notes"]  # Prompt, Image URL... are fields
    assert "Image URL" not in rows[0]
    assert [(r["row"], r["Campaign"], r["Notes"]) for r in rows] == [
        ("1", "spring", ""),
        ("2", "spring", "linked"),
        ("4", "summer", "plain"),
    ]
    assert "note: the header is on row 3; the rows above it are taken as titles" in result.output
    assert (
        "note: 1 row hidden or filtered out in the workbook is not sent (rows 6); "
        "--include-hidden sends them" in result.output
    )


def test_include_hidden_sends_the_hidden_row(
    tmp_path: Path, sim: RunningSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--include-hidden: the hidden row is sent too, with the merged campaign filled in."""
    book = messy_sheets.campaign_workbook(tmp_path)
    bodies = sent_bodies(sim, monkeypatch)
    result = run(sim, book, tmp_path / "r", "--tab", "Shots", "--include-hidden")
    assert result.exit_code == 0, result.output
    assert sorted(b["prompt"] for b in bodies) == [
        "a blue boat",
        "a green hill",
        "a hidden row",
        "a red kite",
    ]
    rows = read_results(tmp_path / "r")
    assert [r["Campaign"] for r in rows] == ["spring", "spring", "spring", "summer"]


def test_job_file_tab_and_include_hidden(tmp_path: Path) -> None:
    """`tab:` and `include_hidden:` in a job file do what the options do."""
    messy_sheets.campaign_workbook(tmp_path)
    job = tmp_path / "job.yaml"
    job.write_text("sheet: campaign.xlsx\ntab: Shots\ninclude_hidden: true\n", encoding="utf-8")
    result = invoke(["validate", str(job)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "4 rows: 4 valid, 0 invalid, 0 duplicates"


def test_a_missing_tab_lists_the_tabs(tmp_path: Path) -> None:
    """--tab with a name the workbook lacks: exit 2 listing its tabs."""
    book = messy_sheets.campaign_workbook(tmp_path)
    result = invoke(["validate", str(book), "--tab", "Shot"])
    assert result.exit_code == 2
    assert f"{book}: has no tab 'Shot'; its tabs are: Notes, Shots" in result.output


@pytest.mark.parametrize(
    ("build", "prompt", "image", "duration", "note"),
    [
        (
            messy_sheets.windows_1252_csv,
            "Café crème, “slow” pan",
            URL.format(1),
            5,
            "is not UTF-8; read as Windows-1252",
        ),
        (messy_sheets.unicode_text, "東京の夜", URL.format(2), 10, "is read as UTF-16"),
        (messy_sheets.semicolon_csv, "Bär, langsam", URL.format(3), 10, "read as Windows-1252"),
    ],
)
def test_legacy_encodings_and_separators_are_read(
    tmp_path: Path,
    sim: RunningSimulator,
    monkeypatch: pytest.MonkeyPatch,
    build: Any,
    prompt: str,
    image: str,
    duration: int,
    note: str,
) -> None:
    """Windows-1252, UTF-16 "Unicode Text" and semicolon CSVs send exactly what was typed."""
    sheet = build(tmp_path)
    bodies = sent_bodies(sim, monkeypatch)
    result = run(sim, sheet, tmp_path / "r")
    assert result.exit_code == 0, result.output
    assert [(b["prompt"], b["image"], b["duration"]) for b in bodies] == [(prompt, image, duration)]
    assert note in result.output


def test_semicolon_separator_is_said(tmp_path: Path) -> None:
    """The separator guess is said once."""
    sheet = messy_sheets.semicolon_csv(tmp_path)
    result = invoke(["validate", str(sheet)])
    assert result.exit_code == 0, result.output
    assert result.output.count("note: the sheet is read as semicolon-separated") == 1


def test_forced_encoding_and_delimiter(tmp_path: Path) -> None:
    """`encoding:` and `delimiter:` in a job file override what is found."""
    sheet = tmp_path / "pipe.csv"
    sheet.write_bytes(f"prompt|image\r\nna\u00efve|{URL.format(1)}\r\n".encode("latin-1"))
    job = tmp_path / "job.yaml"
    job.write_text("sheet: pipe.csv\nencoding: latin-1\ndelimiter: '|'\nout: r\n", encoding="utf-8")
    result = invoke(["run", str(job), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "note:" not in result.output


def test_google_sheets_export_with_title_and_blank_rows(
    tmp_path: Path, sim: RunningSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Title row, blank lines, `Seconds` and `Negative prompt` headers: sent as meant; a bad
    duration names the row and the line the spreadsheet shows."""
    sheet = messy_sheets.google_sheets_csv(tmp_path)
    bodies = sent_bodies(sim, monkeypatch)
    result = run(sim, sheet, tmp_path / "r")
    assert result.exit_code == 1
    assert bodies == [
        {
            "prompt": "a fox",
            "image": URL.format(8),
            "negative_prompt": "blur",
            "duration": 10,
            "resolution": "720P",
        }
    ]
    assert "row 2 (sheet line 6): Seconds: wan2.5-i2v-preview takes 5 or 10, got 7" in result.output
    rows = read_results(tmp_path / "r")
    assert rows[1]["status"] == "invalid"
    assert [r.line for r in read_records(tmp_path / "r")] == [4, 6]


def test_duration_in_seconds_is_never_sent_as_five(
    tmp_path: Path, sim: RunningSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`Duration (s)` of 10: the row is sent (and billed) as 10 s, not the default 5 s."""
    sheet = tmp_path / "s.csv"
    sheet.write_text(f"Prompt,Image URL,Duration (s)\na cat,{URL.format(1)},10\n", "utf-8")
    bodies = sent_bodies(sim, monkeypatch)
    result = run(sim, sheet, tmp_path / "r")
    assert result.exit_code == 0, result.output
    assert [b["duration"] for b in bodies] == [10]


def test_quiet_runs_say_no_notes(
    tmp_path: Path, sim: RunningSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--quiet (cron): the guesses are not said; what was sent is the same."""
    sheet = messy_sheets.semicolon_csv(tmp_path)
    bodies = sent_bodies(sim, monkeypatch)
    result = run(sim, sheet, tmp_path / "r", quiet=True)
    assert result.exit_code == 0
    assert "note:" not in result.output
    assert [b["prompt"] for b in bodies] == ["Bär, langsam"]
