"""On a real terminal, log lines are printed above the progress bar, never glued onto it.

The run is started inside a tmux pane of fixed size (a real pseudo-terminal), and the pane's
screen is read back as a person would see it.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from batchwan.sim.simulator import SimConfig, serve_in_thread
from tests.runhelpers import KEY, write_sheet

TMUX = shutil.which("tmux")
DONE = "RUN-FINISHED-MARK"

pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not on PATH")


def _tmux(socket: str, *args: str) -> str:
    assert TMUX is not None
    return subprocess.run(
        [TMUX, "-L", socket, *args], check=True, capture_output=True, text=True, timeout=20
    ).stdout


def test_warnings_during_the_bar_stay_on_their_own_lines(tmp_path: Path) -> None:
    """Failed tasks log a warning while the bar is drawn; on screen every warning is a line of
    its own, starting with its time, and the bar is on a line of its own below them."""
    sheet = write_sheet(tmp_path, 12)
    out = tmp_path / "run"
    socket = f"batchwan-test-{os.getpid()}"
    config = SimConfig(seed=3, fail_rate=0.5, pending_seconds=0.2, processing_seconds=0.4)
    with serve_in_thread(config) as sim:
        command = shlex.join([
            sys.executable, "-m", "batchwan", "run", str(sheet), "--out", str(out),
            "--base-url", sim.base_url, "--poll-interval", "0.1", "--concurrency", "4",
            "--rate", "50",
        ])  # fmt: skip
        env = f"MULEROUTER_API_KEY={KEY} BATCHWAN_BASE_URL= COLUMNS=160"
        script = f"env {env} {command}; echo {DONE}; sleep 120"
        _tmux(socket, "new-session", "-d", "-x", "160", "-y", "60", "sh", "-c", script)
        try:
            deadline = time.monotonic() + 90
            screen = ""
            while time.monotonic() < deadline:
                screen = _tmux(socket, "capture-pane", "-p", "-J")
                if DONE in screen:
                    break
                time.sleep(0.3)
            else:
                pytest.fail(f"the run did not finish in time; screen:\n{screen}")
        finally:
            _tmux(socket, "kill-server")
    lines = screen.splitlines()
    warnings = [line for line in lines if "the provider failed the task" in line]
    assert warnings, screen
    for line in warnings:
        assert line[:8].count(":") == 2, line  # starts with its HH:MM:SS
        assert "finished" not in line, line
        assert "row/s" not in line, line
        assert "%|" not in line, line
    bars = [line for line in lines if "finished:" in line and "%|" in line]
    assert bars, screen
    assert all("the provider failed" not in line for line in bars)
