"""A big run folder: a cron rerun that adds 100 rows, and `status`, at 100,000 rows.

    python -m bench.bench_folder [ROWS]        (default 100,000; BENCH_QUICK=1: 20,000)

- rerun: the folder holds ROWS finished rows; the sheet gains 100 rows and `batchwan run`
  runs again on it. Measured against sending those same 100 rows into an empty folder: what
  a rerun costs beyond its new rows is the price of the record's size. Also the bytes the
  rerun wrote (``/proc/self/io`` of the child), the growth of the run folder, and the size of
  report.html after the rerun (rewritten whole at every run; its row table is bounded).
- status: `batchwan status` of the ROWS-row folder, against counting its rows by status with
  one SQL query (the floor for any reader of state.db).

Every run is `--no-download` (videos are not what is measured here), at concurrency 512.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.bench_run import batchwan_args, bench_env, write_sheet
from bench.simproc import measure, simulator

ADDED = 100


def folder_bytes(folder: Path) -> int:
    """Bytes of every file in the run folder except its videos."""
    return sum(
        p.stat().st_size
        for p in folder.rglob("*")
        if p.is_file() and "videos" not in p.relative_to(folder).parts
    )


def _run(sheet: Path, out: Path, base: str, *extra: str) -> dict[str, Any]:
    figures = measure(
        "batchwan", batchwan_args(sheet, out, base, 512, "--no-download", *extra), bench_env()
    )
    if figures["returncode"] != 0:
        raise RuntimeError(f"batchwan run failed: {figures['stderr_tail']}")
    return figures


def run(rows: int) -> dict[str, Any]:
    """Build the folder, then time the rerun, the fresh run of the new rows, and status."""
    with (
        simulator() as base,
        tempfile.TemporaryDirectory(prefix="bench-folder-", dir=os.environ.get("BENCH_DIR")) as tmp,
    ):
        folder = Path(tmp)
        sheet, big = folder / "big.csv", folder / "big-run"
        write_sheet(sheet, rows, "folder")
        built = _run(sheet, big, base)
        write_sheet(sheet, ADDED, "folder", start=rows)
        size_before = folder_bytes(big)
        rerun = _run(sheet, big, base)
        size_after = folder_bytes(big)
        report_after = (big / "report.html").stat().st_size
        small = folder / "new-rows.csv"
        write_sheet(small, ADDED, "folder", start=rows)
        # The same 100 requests again, into a folder of their own: on purpose, so allowed.
        fresh = _run(small, folder / "small-run", base, "--allow-repeat")
        status = measure("batchwan", ["status", str(big)])
        floor = measure("bench.floors", ["sqlite", str(big / "state.db")])
    return {
        "name": "folder",
        "rows": rows,
        "build_s": built["wall_s"],
        "rerun_s": rerun["wall_s"],
        "new_rows_only_s": fresh["wall_s"],
        "rerun_ratio": round(rerun["wall_s"] / fresh["wall_s"], 2),
        "rerun_cpu_s": rerun["cpu_s"],
        "rerun_peak_mb": rerun["peak_rss_mb"],
        "new_rows_only_peak_mb": fresh["peak_rss_mb"],
        "rerun_write_bytes": rerun["write_bytes"],
        "rerun_wchar": rerun["wchar"],
        "new_rows_only_write_bytes": fresh["write_bytes"],
        "folder_bytes_before": size_before,
        "folder_bytes_after": size_after,
        "report_bytes_after": report_after,
        "status_s": status["wall_s"],
        "status_peak_mb": status["peak_rss_mb"],
        "sql_count_s": floor["wall_s"],
        "status_ratio": round(status["wall_s"] / floor["wall_s"], 2),
    }


def main() -> None:
    """Print the figures as one JSON line."""
    default = 20_000 if os.environ.get("BENCH_QUICK") == "1" else 100_000
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else default
    print(json.dumps(run(rows)))


if __name__ == "__main__":
    main()
