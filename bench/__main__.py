"""`make bench`: every benchmark in a fresh process, each with its side-by-side ratios.

    python -m bench [NAME ...]        (BENCH_QUICK=1: smaller sizes and fewer cases)

Each benchmark is a module run as ``python -m MODULE``; it prints its figures as JSON on its
last line (a dict, or a dict with a list of ``cases``). Register one with one line below.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

#: (name, module): one line each.
BENCHMARKS = [
    ("run", "bench.bench_run"),  # end to end against a minimal loop, with and without downloads
    ("folder", "bench.bench_folder"),  # cron rerun and status of a 100,000-row run folder
    ("end", "bench.bench_end"),  # a long run's final outputs from the refresh's rows
    ("validate", "bench.bench_validate"),  # validate 1,000,000 rows against the csv module
    ("startup", "bench.bench_startup"),  # `batchwan --help` against `python -c pass`
    ("store", "bench.bench_store"),  # PostgreSQL beside SQLite; three runners beside one
]


def _figures(module: str) -> tuple[Any, str]:
    done = subprocess.run(
        [sys.executable, "-m", module], capture_output=True, text=True, check=False, timeout=1800
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return None, (done.stderr or done.stdout)[-2000:]
    try:
        return json.loads(lines[-1]), ""
    except ValueError:
        return None, done.stdout[-2000:]


def _show(figures: Any) -> None:
    cases = figures.get("cases") if isinstance(figures, dict) else None
    if not cases:
        for key, value in figures.items() if isinstance(figures, dict) else [("", figures)]:
            print(f"  {key:28} {value}")
        return
    columns = list(cases[0])
    print("  " + " ".join(f"{c:>14}" for c in columns))
    for case in cases:
        print("  " + " ".join(f"{case.get(c)!s:>14}" for c in columns))


def main() -> None:
    """Run the benchmarks named on the command line (default: all) and print their figures."""
    wanted = set(sys.argv[1:])
    if unknown := wanted - {name for name, _ in BENCHMARKS}:
        raise SystemExit(f"no benchmark named {', '.join(sorted(unknown))}")
    quick = " (quick)" if os.environ.get("BENCH_QUICK") == "1" else ""
    failed = False
    for name, module in BENCHMARKS:
        if wanted and name not in wanted:
            continue
        started = time.perf_counter()
        figures, error = _figures(module)
        print(f"== {name}{quick}  ({time.perf_counter() - started:.0f} s)", flush=True)
        if figures is None:
            failed = True
            print("  FAILED:\n" + error)
        else:
            _show(figures)
        sys.stdout.flush()
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
