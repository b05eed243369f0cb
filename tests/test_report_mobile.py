"""A 5,000-row run with two own columns, end to end: the report's group table matches pandas,
and the page reads at 1400 px and at 400 px wide (rows as cards, no sideways scrolling).

The page is driven through Chromium's DevTools protocol: evaluating a measurement there is not
subject to the page's Content-Security-Policy, so the page itself stays unchanged.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import pandas as pd
import pytest

from batchwan.outputs.report_rows import ROW_TABLE_LIMIT
from batchwan.sim.simulator import SimConfig, serve_in_thread
from tests.runhelpers import fast_options, invoke

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ROWS = 5000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not on PATH"),
]

MEASURE = """JSON.stringify((function () {
  var table = document.querySelector(".rowtable");
  return {
    rendered: document.documentElement.getAttribute("data-rendered"),
    rows: document.querySelectorAll("tr.row").length,
    tableScroll: table.scrollWidth, tableClient: table.clientWidth,
    pageScroll: document.documentElement.scrollWidth, viewport: window.innerWidth,
    headVisible: getComputedStyle(table.querySelector("thead")).display !== "none",
    error: !!document.getElementById("report-error")
  };
})())"""


def _sheet(folder: Path) -> Path:
    path = folder / "campaign.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["prompt", "image", "resolution", "duration", "campaign", "owner"])
        for i in range(1, ROWS + 1):
            writer.writerow([
                f"shot {i}: a slow dolly along a rain-soaked street at dusk, neon signs",
                f"https://images.example.com/{i}.jpg", ("480P", "720P")[i % 2], (5, 10)[i % 3 == 0],
                f"spring-{i % 4}", ("dana", "sam", "a-very-long-owner-name-without-spaces")[i % 3],
            ])  # fmt: skip
    return path


@pytest.fixture(scope="module")
def big_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder of 5,000 rows (some failed) grouped by campaign and owner."""
    folder = tmp_path_factory.mktemp("big")
    sheet = _sheet(folder)
    out = folder / "run"
    with serve_in_thread(SimConfig(seed=8, fail_rate=0.1)) as sim:
        options = fast_options(sim.base_url, out, "--no-download", "--group-by", "campaign,owner")
        options[options.index("--concurrency") + 1] = "64"
        options[options.index("--rate") + 1] = "2000"
        result = invoke(["run", str(sheet), *options])
    assert result.exit_code == 1, result.output  # the failed rows
    return out


def _table(page: str, name: str) -> list[list[str]]:
    table = re.search(rf'<table class="breakdown" data-group="{name}">(.*?)</table>', page, re.S)
    assert table is not None
    body = table.group(1).split("<tbody>")[1]
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        keys = re.findall(r"<td>(.*?)</td>", row)
        values = re.findall(r'data-v="([^"]*)"', row)
        rows.append([*keys, *values])
    return rows


def test_group_table_matches_a_pandas_groupby_of_results(big_run: Path) -> None:
    """Rows, succeeded, failed, other, video seconds, estimated and spent per campaign and
    owner in report.html are what pandas computes from results.csv."""
    frame = pd.read_csv(big_run / "results.csv")
    assert len(frame) == ROWS
    frame["ok"] = frame["status"] == "succeeded"
    frame["bad"] = frame["status"] == "failed"
    frame["spent"] = frame["cost"].where(frame["ok"], 0.0)
    expected = (
        frame.groupby(["campaign", "owner"])
        .agg(rows=("row", "size"), ok=("ok", "sum"), bad=("bad", "sum"),
             video=("duration", "sum"), estimated=("cost", "sum"), spent=("spent", "sum"))
        .reset_index()
    )  # fmt: skip
    table = _table((big_run / "report.html").read_text(encoding="utf-8"), "by_group")
    assert len(table) == len(expected)
    for got, want in zip(table, expected.itertuples(index=False), strict=True):
        assert got[:2] == [want.campaign, want.owner]
        rows, ok, bad, other, video = (int(v) for v in got[2:7])
        assert (rows, ok, bad, other) == (
            want.rows,
            want.ok,
            want.bad,
            want.rows - want.ok - want.bad,
        )
        assert video == want.video
        assert float(got[7]) == pytest.approx(want.estimated, abs=0.005)
        assert float(got[8]) == pytest.approx(want.spent, abs=0.005)
    summary = json.loads((big_run / "summary.json").read_text())
    assert [g["rows"] for g in summary["breakdowns"]["by_group"]["groups"]] == list(expected.rows)


def test_page_of_five_thousand_rows_stays_under_five_megabytes(big_run: Path) -> None:
    """The whole page, every row in it, is under 5 MB."""
    size = (big_run / "report.html").stat().st_size
    print(f"report.html of {ROWS:,} rows: {size:,} bytes")
    assert size < 5 * 1024 * 1024, size


class Browser:
    """Headless Chromium, driven over its DevTools websocket."""

    def __init__(self, profile: Path) -> None:
        assert CHROMIUM is not None
        self.profile = profile
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
             f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, process_group=0,
        )  # fmt: skip
        self._id = 0

    def port(self) -> int:
        """The DevTools port Chromium chose, once it has written it."""
        marker = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if marker.is_file() and marker.read_text().strip():
                return int(marker.read_text().split()[0])
            time.sleep(0.1)
        raise AssertionError("chromium did not open its DevTools port")

    def close(self) -> None:
        """Stop the browser and every helper process it started."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    async def call(self, ws: Any, method: str, **params: Any) -> dict[str, Any]:
        """Send one DevTools command and wait for its answer (events in between are skipped)."""
        self._id += 1
        await ws.send_json({"id": self._id, "method": method, "params": params})
        while True:
            message = await asyncio.wait_for(ws.receive_json(), 60)
            if message.get("id") == self._id:
                assert "error" not in message, message
                result: dict[str, Any] = message.get("result", {})
                return result


async def _measure(browser: Browser, page: Path, width: int) -> tuple[dict[str, Any], bytes]:
    async with aiohttp.ClientSession() as session:
        base = f"http://127.0.0.1:{browser.port()}"
        async with session.get(f"{base}/json/list") as resp:
            targets = await resp.json()
        url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        async with session.ws_connect(url, max_msg_size=0) as ws:
            await browser.call(ws, "Emulation.setDeviceMetricsOverride", width=width,
                               height=900, deviceScaleFactor=1, mobile=width < 600)  # fmt: skip
            await browser.call(ws, "Page.enable")
            await browser.call(ws, "Page.navigate", url=page.as_uri())
            deadline = time.monotonic() + 60
            while True:
                done = await browser.call(
                    ws, "Runtime.evaluate", expression=MEASURE, returnByValue=True
                )
                value = json.loads(done["result"]["value"]) if "value" in done["result"] else {}
                if value.get("rendered") or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            # The row table is what changes between widths: photograph it, not the cards above.
            scroll = 'document.getElementById("rows").scrollIntoView()'
            await browser.call(ws, "Runtime.evaluate", expression=scroll)
            picture = await browser.call(ws, "Page.captureScreenshot", format="png")
            return value, base64.b64decode(picture["data"])


@pytest.mark.parametrize("width", [1400, 400])
def test_page_renders_wide_and_narrow_without_sideways_scroll(
    big_run: Path, tmp_path: Path, width: int
) -> None:
    """At 1400 px the rows are a table; at 400 px they are cards, and neither the row table nor
    the page scrolls sideways. Screenshots are kept in test-artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"report-{width}px.png"
    browser = Browser(tmp_path / "profile")
    try:
        value, png = asyncio.run(_measure(browser, big_run / "report.html", width))
    finally:
        browser.close()
    shot.write_bytes(png)
    assert value["rendered"] == str(min(ROWS, ROW_TABLE_LIMIT))  # the table is bounded
    assert value["rows"] == 200
    assert value["error"] is False
    assert value["viewport"] == width
    assert value["tableScroll"] <= value["tableClient"], value
    assert value["pageScroll"] <= value["viewport"], value
    assert value["headVisible"] is (width > 720)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


CLICK_COST = """JSON.stringify((function () {
  var button = document.querySelector('th[data-sort="cost"] button');
  var costs = function () {
    return Array.prototype.map.call(document.querySelectorAll("tr.row td.num:nth-child(7)"),
      function (td) { return td.textContent; }).slice(0, 5);
  };
  button.click();
  var up = costs();
  button.click();
  var down = costs();
  document.querySelector('th[data-sort="own:1"] button').click();
  var owners = Array.prototype.map.call(document.querySelectorAll("tr.row td.own:nth-child(9)"),
    function (td) { return td.textContent; });
  return {up: up, down: down, owners: owners, hash: location.hash,
          sorted: document.querySelector('th[data-sort="own:1"]').getAttribute("aria-sort")};
})())"""


async def _click(browser: Browser, page: Path) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{browser.port()}/json/list") as resp:
            targets = await resp.json()
        url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        async with session.ws_connect(url, max_msg_size=0) as ws:
            await browser.call(ws, "Page.navigate", url=page.as_uri())
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                probe = await browser.call(
                    ws, "Runtime.evaluate", returnByValue=True,
                    expression='document.documentElement.getAttribute("data-rendered")',
                )  # fmt: skip
                if probe["result"].get("value"):
                    break
                await asyncio.sleep(0.2)
            done = await browser.call(ws, "Runtime.evaluate", expression=CLICK_COST,
                                      returnByValue=True)  # fmt: skip
            result: dict[str, Any] = json.loads(done["result"]["value"])
            return result


def test_clicking_a_header_sorts_the_rows(big_run: Path, tmp_path: Path) -> None:
    """Clicking Cost sorts cheapest first, clicking again dearest first; an own column sorts
    too, and the order is kept in the address so it can be shared."""
    browser = Browser(tmp_path / "profile")
    try:
        value = asyncio.run(_click(browser, big_run / "report.html"))
    finally:
        browser.close()
    assert value["up"] == ["$0.25"] * 5
    assert value["down"] == ["$1.00"] * 5
    assert value["owners"] == sorted(value["owners"])
    assert value["owners"][0] == "a-very-long-owner-name-without-spaces"
    assert value["sorted"] == "ascending"
    assert value["hash"] == "#sort=own%3A1"
