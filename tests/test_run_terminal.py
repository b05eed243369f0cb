"""What a person sees: a progress bar on a terminal, plain log lines in a pipe."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

from PIL import Image

from batchwan.sim.simulator import SimConfig, serve_in_thread
from tests.runhelpers import KEY, invoke, read_results, spawn, write_sheet


def _read_all(fd: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> bytes:
    """Everything the process writes to its terminal, until it exits (bounded)."""
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = os.read(fd, 65536)
        except OSError:  # the terminal closed: the process is gone
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=10)
    return b"".join(chunks)


def test_a_terminal_gets_a_progress_bar(tmp_path: Path) -> None:
    """On a terminal the run draws a tqdm bar of rows finished, with counts by status."""
    sheet = write_sheet(tmp_path, 8)
    with serve_in_thread(SimConfig()) as sim:
        primary, secondary = pty.openpty()
        # A real terminal has a size; a bare pty says 0x0 and tqdm would draw nothing.
        fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        env = {**os.environ, "MULEROUTER_API_KEY": KEY}
        proc = subprocess.Popen(
            [sys.executable, "-m", "batchwan", "run", str(sheet), "--out", str(tmp_path / "run"),
             "--base-url", sim.base_url, "--poll-interval", "0.05", "--concurrency", "8"],
            stdin=secondary, stdout=secondary, stderr=secondary, env=env,
        )  # fmt: skip
        os.close(secondary)
        try:
            screen = _read_all(primary, proc).decode(errors="replace")
        finally:
            os.close(primary)
            proc.kill()
    assert proc.returncode == 0, screen
    assert "finished: 100%" in screen
    assert "8/8" in screen
    assert "succeeded=8" in screen


def test_a_pipe_gets_plain_log_lines(tmp_path: Path) -> None:
    """Without a terminal (cron, CI) the run writes plain timestamped lines, no bar."""
    sheet = write_sheet(tmp_path, 3)
    with serve_in_thread(SimConfig()) as sim:
        proc = spawn(["run", str(sheet), "--out", str(tmp_path / "run"), "--base-url",
                      sim.base_url, "--poll-interval", "0.05"])  # fmt: skip
        _, stderr = proc.communicate(timeout=60)
    text = stderr.decode()
    assert proc.returncode == 0, text
    assert "row 1: accepted as task" in text
    assert "\r" not in text  # no bar redrawing itself


def test_run_fix_images_sends_a_fixed_copy_and_says_what_was_done(tmp_path: Path) -> None:
    """--fix-images: a 2400x1200 PNG is resized into the run folder, original untouched."""
    big = tmp_path / "big.png"
    Image.new("RGB", (2400, 1200), (30, 90, 160)).save(big)
    original = big.read_bytes()
    sheet = tmp_path / "s.csv"
    sheet.write_text("prompt,image\na wide harbour at dawn,big.png\n", encoding="utf-8")
    out = tmp_path / "run"
    with serve_in_thread(SimConfig()) as sim:
        plain = invoke(["run", str(sheet), "--out", str(tmp_path / "plain"),
                        "--base-url", sim.base_url, "--quiet"])  # fmt: skip
        fixed = invoke(["run", str(sheet), "--out", str(out), "--base-url", sim.base_url,
                        "--poll-interval", "0.05", "--fix-images"])  # fmt: skip
        stats = sim.sim.stats()
    assert plain.exit_code == 1
    assert "--fix-images" in plain.output
    assert fixed.exit_code == 0, fixed.output
    assert stats["tasks_created"] == 1
    assert big.read_bytes() == original
    copies = list((out / "fixed-images").iterdir())
    assert len(copies) == 1
    with Image.open(copies[0]) as image:
        assert image.format == "JPEG"
        assert image.size == (2000, 1000)
    assert "resized" in fixed.output
    assert read_results(out)[0]["status"] == "succeeded"
