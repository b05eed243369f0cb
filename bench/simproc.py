"""The simulator as a separate process on loopback, shared by both sides of a comparison."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

MODEL_PATH = "/vendors/alibaba/v1/wan2.5-i2v-preview/generation"


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stats(base: str) -> dict[str, Any]:
    """The simulator's counters (tasks created, duplicates, most in flight...)."""
    with urllib.request.urlopen(f"{base}/_sim/stats", timeout=5) as response:
        return dict(json.load(response))


@contextmanager
def simulator(*settings: str) -> Iterator[str]:
    """Start ``batchwan simulate`` with instant tasks (plus ``settings``); yield its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "batchwan", "simulate", "--port", str(port), *settings],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                stats(base)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the simulator did not start") from None
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def measure(module: str, args: Sequence[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``python -m module args`` in a fresh process; wall time, CPU, peak memory, bytes."""
    with tempfile.TemporaryDirectory(prefix="bench-child-") as folder:
        figures_path = Path(folder) / "figures.json"
        command = [sys.executable, "-m", "bench.measured", str(figures_path), module, *args]
        start = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, check=False, timeout=1800)
        wall = time.perf_counter() - start
        if not figures_path.is_file():
            raise RuntimeError(f"{module} {' '.join(args)} died: {done.stderr.decode()[-2000:]}")
        figures = dict(json.loads(figures_path.read_text(encoding="utf-8")))
    figures["wall_s"] = round(wall, 2)
    figures["returncode"] = done.returncode
    figures["stderr_tail"] = done.stderr.decode(errors="replace")[-500:]
    return figures
