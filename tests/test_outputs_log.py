"""run.log tells the story a person greps for, and never holds the key or escape sequences."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from batchwan.cli.common import close_logging, setup_logging
from batchwan.sim.simulator import SimConfig, serve_in_thread
from tests.runhelpers import KEY, fast_options, invoke, write_sheet


def test_run_log_has_starts_ends_creates_completions_downloads_with_traces(
    tmp_path: Path,
) -> None:
    """Each row's create, acceptance, completion and download is one line of run.log with the
    provider's trace id; the run's start and end are there with its options; no key."""
    sheet = write_sheet(tmp_path, 6)
    out = tmp_path / "run"
    with serve_in_thread(SimConfig(seed=11, api_key=KEY, fail_rate=0.34)) as sim:
        result = invoke(["run", str(sheet), *fast_options(sim.base_url, out)])
    assert result.exit_code in (0, 1), result.output
    log = (out / "run.log").read_text(encoding="utf-8")
    assert re.search(r"run start: 6 rows to send, 0 tasks to follow; concurrency 16", log)
    assert "run end:" in log
    trace = r"\(trace [0-9a-f]{32}\)"
    for row in range(1, 7):
        assert re.search(rf"row {row}: create sent \(try 1\)", log)
        assert re.search(rf"row {row}: accepted as task \S+ {trace}", log)
    succeeded = re.findall(rf"row \d+: task \S+ succeeded {trace}", log)
    failed = re.findall(rf"row \d+: the provider failed the task: .* {trace}", log)
    assert succeeded
    assert failed
    assert len(succeeded) + len(failed) == 6
    assert len(re.findall(r"downloaded videos/\S+\.mp4 \(\d+ bytes\)", log)) == len(succeeded)
    assert KEY.lower() not in log.lower()


@pytest.fixture
def logged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """run.log as setup_logging writes it, with a key in the environment."""
    monkeypatch.setenv("MULEROUTER_API_KEY", KEY)
    path = tmp_path / "run.log"
    handlers = setup_logging(path, console_level=None)
    try:
        log = logging.getLogger("batchwan.test")
        log.warning("upper %s", KEY.upper())
        log.warning("mixed " + KEY.swapcase() + " and %s", KEY)
        hostile = "\x1b]0;owned\x07bad\x1b]52;c;aGk=\x07 request\nforged line"
        log.warning("provider said %s", hostile)
    finally:
        close_logging(handlers)
    return path


def test_the_key_in_another_case_is_scrubbed(logged: Path) -> None:
    """The key is replaced whatever its letter case, in the message and in its arguments."""
    text = logged.read_text(encoding="utf-8")
    assert KEY.lower() not in text.lower()
    assert text.count("[key]") == 3


def test_escape_sequences_and_line_breaks_do_not_reach_run_log(logged: Path) -> None:
    """Provider text cannot write escape sequences into run.log or forge a line of its own."""
    text = logged.read_text(encoding="utf-8")
    assert "\x1b" not in text
    assert "\x07" not in text
    lines = text.splitlines()
    assert len(lines) == 3
    assert lines[2].endswith("provider said bad request forged line")
