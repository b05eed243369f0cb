"""`make bench`: every benchmark, each in a fresh process, with its side-by-side ratio.

- validate: 100,000 URL-image rows loaded and checked, against reading the same file with the
  standard csv module (the floor for any loader); peak memory of the process.
- run: 10,000 rows through `batchwan run` against a minimal aiohttp create-and-poll loop, both
  on one simulator process with instant tasks at concurrency 64.
- store: one runner on PostgreSQL beside one on SQLite, three runners beside one, and the cost
  of folding the WAL into state.db after each sending mark and task id.
"""

from __future__ import annotations

import json
import subprocess
import sys

_VALIDATE = """
import csv, json, tempfile, time
from pathlib import Path
from bench.bench_validate import run, write_sheet
figures = run(100_000)
with tempfile.TemporaryDirectory() as folder:
    path = Path(folder) / "sheet.csv"
    write_sheet(path, 100_000)
    start = time.perf_counter()
    with path.open(newline="", encoding="utf-8") as handle:
        rows = sum(1 for _ in csv.DictReader(handle))
    figures["csv_module_only_s"] = round(time.perf_counter() - start, 3)
figures["ratio_to_csv_module"] = round(figures["total_s"] / figures["csv_module_only_s"], 1)
print(json.dumps(figures))
"""

_STARTUP = "from bench.bench_startup import main; main()"

_RUN = """
import json
from bench.bench_run import run
print(json.dumps(run(10_000)))
"""

_STORE = "import json; from bench.bench_store import run; print(json.dumps(run(1000)))"


def _measure(code: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=900
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    """Run each benchmark and print its figures."""
    for name, code in (
        ("validate", _VALIDATE),
        ("run", _RUN),
        ("startup", _STARTUP),
        ("store", _STORE),
    ):
        figures = _measure(code)
        print(f"== {name}")
        for key, value in figures.items():
            print(f"  {key:32} {value}")


if __name__ == "__main__":
    main()
