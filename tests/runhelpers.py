"""Helpers for the tests that run whole batches against the simulator."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from batchwan.cli import main

KEY = "sk-test-0123456789abcdef"


def write_sheet(
    folder: Path,
    count: int,
    *,
    name: str = "sheet.csv",
    resolution: str = "480P",
    duration: int = 5,
    start: int = 1,
) -> Path:
    """A CSV sheet of ``count`` valid rows with URL images and a user column."""
    path = folder / name
    new = not path.exists()
    with path.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(["prompt", "image", "duration", "resolution", "campaign"])
        for i in range(start, start + count):
            writer.writerow(
                [
                    f"prompt number {i}: a cat walks along a wall",
                    f"https://images.example.com/{i}.jpg",
                    duration,
                    resolution,
                    f"c{i % 3}",
                ]
            )
    return path


def read_results(run_dir: Path) -> list[dict[str, str]]:
    """results.csv as a list of dicts."""
    with (run_dir / "results.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def fast_options(base_url: str, out: Path, *extra: str) -> list[str]:
    """Options that make a run against a quick simulator finish in a second or two."""
    return [
        "--base-url", base_url, "--out", str(out), "--poll-interval", "0.05",
        "--concurrency", "16", "--rate", "200", "--poll-rate", "1000", "--quiet", *extra,
    ]  # fmt: skip


def invoke(args: Sequence[str], *, key: str | None = KEY) -> Result:
    """Run the CLI in this process, with the key in the environment (or none)."""
    env = {"MULEROUTER_API_KEY": key or "", "BATCHWAN_BASE_URL": ""}
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def spawn(args: Sequence[str], *, key: str = KEY, **kwargs: Any) -> subprocess.Popen[bytes]:
    """Start ``batchwan`` as a separate process (for signals and kills)."""
    env = {**os.environ, "MULEROUTER_API_KEY": key}
    env.pop("BATCHWAN_BASE_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "batchwan", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )
