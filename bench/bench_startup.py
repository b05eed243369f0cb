"""How long `batchwan --help` takes to start, beside a bare `python -c pass`.

    python -m bench.bench_startup [TIMES]        (default 10)

Each command is run TIMES times, interleaved so that both see the same machine load; the figures
are the medians and their ratio. The startup is what every cron line and every shell completion
pays, so it should stay a small multiple of the interpreter's own.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time


def _seconds(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, timeout=60)
    return time.perf_counter() - start


def run(times: int = 10) -> dict[str, float]:
    """Median seconds of `batchwan --help` and of `python -c pass`, and their ratio."""
    help_command = [sys.executable, "-m", "batchwan", "--help"]
    bare_command = [sys.executable, "-c", "pass"]
    helps, bares = [], []
    for _ in range(times):
        helps.append(_seconds(help_command))
        bares.append(_seconds(bare_command))
    help_median, bare_median = statistics.median(helps), statistics.median(bares)
    return {
        "batchwan_help_median_s": round(help_median, 3),
        "python_pass_median_s": round(bare_median, 3),
        "ratio_to_python": round(help_median / bare_median, 1),
    }


def main() -> None:
    """Print the figures as one JSON line."""
    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 10)))


if __name__ == "__main__":
    main()
