"""report.html in a real headless browser: what a reader sees after the page's script ran."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from recordfactory import image, mixed_run, record, summary

from batchwan.outputs.report import render_report
from batchwan.outputs.report_rows import ROW_TABLE_LIMIT
from batchwan.values import Status

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TIMEOUT = 90  # seconds for one browser start; a first start on a cold CI machine is slow

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="chromium is not on PATH (`make browser-deps` installs Debian's chromium)",
    ),
]


def browse(page: Path, profile: Path, *options: str, fragment: str = "") -> tuple[str, str]:
    """Open ``page`` in headless chromium with ``options``; return its stdout and stderr."""
    assert CHROMIUM is not None
    args = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        *options,
        page.as_uri() + fragment,
    ]
    # Its own process group, so a hung browser is stopped with every helper process it started.
    with subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        process_group=0,
    ) as proc:
        try:
            out, err = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            pytest.fail(f"chromium did not finish within {TIMEOUT} s")
    assert proc.returncode == 0, err[-2000:]
    return out, err


def console_messages(stderr: str) -> list[str]:
    """Lines the page wrote to the browser console: script errors, refused loads, warnings."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def dump_dom(page: Path, profile: Path, fragment: str = "") -> str:
    """The page's DOM after its script ran; fails on any console message or script error."""
    dom, err = browse(page, profile, "--dump-dom", fragment=fragment)
    assert console_messages(err) == []
    assert 'id="report-error"' not in dom
    return dom


def rendered_rows(dom: str) -> list[str]:
    """The rows of the row table as the script drew them."""
    return re.findall(r'<tr class="row">.*?</tr>', dom, flags=re.DOTALL)


@pytest.fixture
def mixed_page(tmp_path: Path) -> Path:
    """A report of a small run with every status, local images and videos on disk."""
    run_dir = tmp_path / "run"
    records = mixed_run(run_dir)
    page = run_dir / "report.html"
    meta = {"sheet": str(tmp_path / "demo.csv"), "model": "wan2.5-i2v-preview"}
    page.write_text(render_report(run_dir, records, summary(records), meta=meta), encoding="utf-8")
    return page


def test_report_shows_rows_statuses_charts_and_playable_videos(
    mixed_page: Path, tmp_path: Path
) -> None:
    """After the script runs, every row is drawn with its status, the four charts are there,
    video elements point at files that exist, and no script error or refused load occurred."""
    dom = dump_dom(mixed_page, tmp_path / "profile")
    assert 'data-rendered="22"' in dom
    rows = rendered_rows(dom)
    assert len(rows) == 22
    for status in Status:
        assert f'class="badge s-{status.value}"' in dom
    assert "Rows 1\u201322 of 22" in dom
    assert dom.count('<svg class="chart"') == 4
    sources = re.findall(r'<video controls="" preload="none" src="([^"]+)"', dom)
    assert len(sources) == 12
    for src in sources:
        assert (mixed_page.parent / src).is_file()
    assert dom.count('<img src="data:image/jpeg;base64,') == 12
    assert "data-pwned" not in dom.split("<body")[0]  # the hostile prompt stayed text
    assert "&lt;/script&gt;&lt;script&gt;" in dom


def test_screenshot_of_the_report(mixed_page: Path, tmp_path: Path) -> None:
    """The page renders to a screenshot, kept in test-artifacts/ for a person to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    _, err = browse(
        mixed_page, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,2000"
    )
    assert console_messages(err) == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_address_fragment_filters_by_status(mixed_page: Path, tmp_path: Path) -> None:
    """report.html#status=failed shows only the failed rows, so a view can be shared."""
    dom = dump_dom(mixed_page, tmp_path / "profile", fragment="#status=failed")
    rows = rendered_rows(dom)
    assert len(rows) == 3
    assert all('class="badge s-failed"' in row for row in rows)
    assert re.search(r'data-status="failed" aria-pressed="true"', dom)


def test_address_fragment_searches_prompts(mixed_page: Path, tmp_path: Path) -> None:
    """report.html#q=... keeps only rows whose prompt, id or error contains the words."""
    dom = dump_dom(mixed_page, tmp_path / "profile", fragment="#q=take%2011")
    rows = rendered_rows(dom)
    assert len(rows) == 1
    assert "A cat on a windowsill, take 11" in rows[0]


def test_five_thousand_rows_open_light_and_without_errors(tmp_path: Path) -> None:
    """A 5,000-row report stays under 5 MB, lists its bounded table, draws its first page of
    200 rows, and the browser reports no error."""
    pictures = [
        image(tmp_path / "img" / f"{i}.png", colour=f"#{i * 12:02x}7090") for i in range(20)
    ]
    records = [
        record(
            i,
            Status.SUCCEEDED if i % 7 else Status.FAILED,
            image=str(pictures[i % 20]),
            prompt=f"Shot {i}: slow dolly along a rain-soaked street at dusk, neon signs " * 3,
            error=None if i % 7 else f"3001 Task Execution Error upstream {i:06d}",
        )
        for i in range(1, 5001)
    ]
    page = tmp_path / "report.html"
    text = render_report(tmp_path, records, summary(records))
    assert len(text.encode()) < 5 * 1024 * 1024
    page.write_text(text, encoding="utf-8")
    dom = dump_dom(page, tmp_path / "profile")
    assert f'data-rendered="{ROW_TABLE_LIMIT}"' in dom  # the table is bounded
    assert len(rendered_rows(dom)) == 200
    pages = ROW_TABLE_LIMIT // 200
    assert f"Rows 1\u2013200 of {ROW_TABLE_LIMIT:,} \u00b7 page 1 of {pages}" in dom
