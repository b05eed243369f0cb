"""`batchwan validate` of a big CSV of URL-image rows against reading it with the csv module.

    python -m bench.bench_validate [ROWS]        (default 1,000,000; BENCH_QUICK=1: 100,000)

Both sides run as fresh child processes on the same file; the figures are their wall times,
the ratio, and the CPU time and peak memory of each. ``run`` also times loading and checking
the rows whole in process, as `run` does (validate streams a CSV's rows instead).

The bar: 1,000,000 rows in under 30 s and under 1 GB on a 2-core machine.
"""

from __future__ import annotations

import csv
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from batchwan.checks.validation import check_rows
from batchwan.sheet.jobfile import load_source
from batchwan.sheet.loader import read_spec_sheet
from batchwan.values import Status
from bench.simproc import measure

_RESOLUTIONS = ("480P", "720P", "1080P")


def write_sheet(path: Path, rows: int) -> None:
    """Write a realistic sheet: every row distinct, a URL image, the user's own columns."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["id", "prompt", "image", "duration", "resolution", "seed", "campaign", "owner"]
        )
        for n in range(rows):
            writer.writerow(
                [
                    f"clip-{n:06d}",
                    f"A slow dolly shot across a harbour at dawn, boats rocking gently, take {n}",
                    f"https://cdn.example.com/frames/{n // 7}/frame-{n:06d}.jpg",
                    "5" if n % 3 else "10",
                    _RESOLUTIONS[n % 3],
                    str(n * 7919 % 2147483647),
                    f"campaign-{n % 12}",
                    f"owner{n % 5}@example.com",
                ]
            )


def _peak_rss_mb() -> float:
    # ru_maxrss is KiB on Linux: the high-water mark of the whole process.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(rows: int = 100_000) -> dict[str, Any]:
    """Time loading and validating `rows` URL-image rows; the figures as a dict."""
    with tempfile.TemporaryDirectory(prefix="bench-validate-") as folder:
        sheet_path = Path(folder) / "sheet.csv"
        write_sheet(sheet_path, rows)
        rss_before = _peak_rss_mb()
        start = time.perf_counter()
        spec = load_source(sheet_path)
        sheet = read_spec_sheet(spec)
        loaded = time.perf_counter()
        checked = check_rows(sheet, spec)
        done = time.perf_counter()
    valid = sum(1 for row in checked if row.status is Status.PENDING)
    seconds = done - start
    return {
        "name": "validate",
        "rows": rows,
        "valid": valid,
        "load_s": round(loaded - start, 3),
        "validate_s": round(done - loaded, 3),
        "total_s": round(seconds, 3),
        "rows_per_s": round(rows / seconds) if seconds else None,
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "peak_rss_before_mb": round(rss_before, 1),
        "bar": "under 30 s and 1 GB for 1,000,000 rows (30 us a row)",
        "ok": seconds < 30 * rows / 1_000_000 and _peak_rss_mb() < (1024 if rows >= 10**6 else 500),
    }


def side_by_side(rows: int) -> dict[str, Any]:
    """`batchwan validate SHEET` and the csv module's read of SHEET, each in a child."""
    with tempfile.TemporaryDirectory(prefix="bench-validate-") as folder:
        sheet_path = Path(folder) / "sheet.csv"
        write_sheet(sheet_path, rows)
        floor = measure("bench.floors", ["csv", str(sheet_path)])
        ours = measure("batchwan", ["validate", str(sheet_path)])
    if ours["returncode"] != 0:
        raise RuntimeError(f"batchwan validate failed: {ours['stderr_tail']}")
    scale = rows / 1_000_000
    return {
        "name": "validate",
        "rows": rows,
        "validate_s": ours["wall_s"],
        "csv_module_s": floor["wall_s"],
        "ratio": round(ours["wall_s"] / floor["wall_s"], 2),
        "validate_cpu_s": ours["cpu_s"],
        "csv_module_cpu_s": floor["cpu_s"],
        "validate_peak_mb": ours["peak_rss_mb"],
        "csv_module_peak_mb": floor["peak_rss_mb"],
        "bar": "1,000,000 rows in under 30 s and under 1 GB",
        # Time scales with the rows; memory does not (a CSV's rows are never all held).
        "ok": ours["wall_s"] < 30 * max(scale, 0.01) and ours["peak_rss_mb"] < 1024,
    }


def main() -> None:
    """Print the side-by-side figures as one JSON line."""
    default = 100_000 if os.environ.get("BENCH_QUICK") == "1" else 1_000_000
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else default
    print(json.dumps(side_by_side(rows)))


if __name__ == "__main__":
    main()
