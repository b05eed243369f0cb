"""`batchwan run` against a minimal aiohttp create-and-poll loop, on the same simulator.

Both talk to one simulator process with instant tasks, at the same concurrency and poll
interval, one after the other in this run, and the ratio of their wall times is the figure.
The minimal loop keeps no record at all; batchwan commits every transition durably (SQLite,
synchronous=FULL), rewrites results.csv as it goes, and writes the report at the end.
"""

from __future__ import annotations

import asyncio
import csv
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp

MODEL_PATH = "/vendors/alibaba/v1/wan2.5-i2v-preview/generation"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_simulator(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "batchwan", "simulate", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_sim/stats", timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the simulator did not start")


def _write_sheet(path: Path, rows: int, tag: str) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["prompt", "image", "duration", "resolution"])
        for i in range(rows):
            writer.writerow(
                [f"{tag} row {i}: waves", f"https://img.example.com/{i}.jpg", 5, "480P"]
            )


async def _minimal_loop(base: str, rows: int, concurrency: int, interval: float, tag: str) -> None:
    """Create and poll, nothing else: the most this machine and simulator allow."""
    queue = list(range(rows))
    url = base + MODEL_PATH

    async def worker(session: aiohttp.ClientSession) -> None:
        while queue:
            i = queue.pop()
            body = {"prompt": f"{tag} row {i}: waves", "image": f"https://img.example.com/{i}.jpg",
                    "duration": 5, "resolution": "480P"}  # fmt: skip
            async with session.post(url, json=body) as response:
                task_id = (await response.json())["task_info"]["id"]
            while True:
                await asyncio.sleep(interval)
                async with session.get(f"{url}/{task_id}") as response:
                    status = (await response.json())["task_info"]["status"]
                if status in ("completed", "succeeded", "failed"):
                    break

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))


def _stats(port: int) -> dict[str, Any]:
    import json

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_sim/stats", timeout=5) as response:
        return dict(json.load(response))


def run(rows: int = 10_000, concurrency: int = 64, interval: float = 0.05) -> dict[str, Any]:
    """Time both sides on one simulator; return the figures and the ratio."""
    port = _free_port()
    sim = _start_simulator(port)
    base = f"http://127.0.0.1:{port}"
    try:
        start = time.perf_counter()
        asyncio.run(_minimal_loop(base, rows, concurrency, interval, "minimal"))
        minimal = time.perf_counter() - start
        with tempfile.TemporaryDirectory() as tmp:
            sheet = Path(tmp) / "bench.csv"
            _write_sheet(sheet, rows, "batchwan")
            env = {**os.environ, "MULEROUTER_API_KEY": "bench-key"}
            command = [
                sys.executable, "-m", "batchwan", "run", str(sheet), "--out", f"{tmp}/run",
                "--base-url", base, "--concurrency", str(concurrency), "--rate", "100000",
                "--poll-interval", str(interval), "--no-download", "--quiet",
            ]  # fmt: skip
            start = time.perf_counter()
            done = subprocess.run(command, env=env, capture_output=True, check=False)
            batchwan = time.perf_counter() - start
            if done.returncode != 0:
                raise RuntimeError(f"batchwan run failed: {done.stderr.decode()[-2000:]}")
        stats = _stats(port)
    finally:
        sim.terminate()
        sim.wait(timeout=30)
    return {
        "rows": rows,
        "concurrency": concurrency,
        "poll_interval_s": interval,
        "minimal_loop_s": round(minimal, 2),
        "batchwan_run_s": round(batchwan, 2),
        "ratio": round(batchwan / minimal, 2),
        "simulator_tasks_created": stats["tasks_created"],
        "simulator_duplicate_payloads": stats["duplicate_payloads"],
    }


if __name__ == "__main__":
    print(run(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000))
