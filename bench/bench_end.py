"""The end of a long run: its final outputs from the rows the refresh kept, against building
every row from the record again (what the end did before), at two sizes.

    python -m bench.bench_end [ROWS ...]        (default 20,000 and 100,000; BENCH_QUICK=1: 20,000)

A long run's refresh has built every row and rendered its line of results.csv; then 100 rows
change and the run ends. Both ways write the same results.csv and summary.json (the figures
check it); each is timed in this process, one after the other, best of three. The report
is not written by either (it is the same work both ways).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from batchwan.checks.validation import check_rows
from batchwan.execution import write_final_outputs
from batchwan.pool.refresh import FreshRecords
from batchwan.sheet.jobfile import load_source
from batchwan.sheet.loader import read_sheet
from batchwan.store.ledger import Ledger
from batchwan.values import Status
from tests.runhelpers import write_sheet

CHANGED = 100
REPEAT = 3


async def _case(folder: Path, rows: int) -> dict[str, Any]:
    spec = load_source(write_sheet(folder, rows))
    checked = check_rows(read_sheet(spec.sheet), spec)
    ledger = Ledger(folder / "run")
    try:
        ledger.claim(spec.sheet, "wan2.5-i2v-preview")
        ledger.sync_sheet(checked, [0.25] * len(checked), [])
        keys = [row.key for row in ledger.sheet_rows]
        kept, full = [], []
        results = folder / "run" / "results.csv"
        for rep in range(REPEAT):
            fresh = FreshRecords(ledger)
            fresh.take()
            await fresh.build()  # the refreshes of a long run have built every row
            for n in range(rep, rows, rows // CHANGED):  # then some rows end, and the run
                await ledger.begin_create(keys[n])
                await ledger.create_accepted(keys[n], f"task-{n}")
                await ledger.task_finished(keys[n], Status.SUCCEEDED, video_url=f"https://v/{n}")
            started = time.perf_counter()
            write_final_outputs(ledger, fresh=fresh)
            kept.append(time.perf_counter() - started)
            ours = results.read_bytes()
            started = time.perf_counter()
            write_final_outputs(ledger)  # every row built from the record
            full.append(time.perf_counter() - started)
            if results.read_bytes() != ours:
                raise RuntimeError("the final results.csv differs between the two ways")
    finally:
        ledger.close()
    return {
        "rows": rows,
        "changed": CHANGED,
        "rebuild_all_s": round(min(full), 3),
        "from_refresh_s": round(min(kept), 3),
        "ratio": round(min(kept) / min(full), 3),
    }


def main() -> None:
    """Both ways at each size, as one JSON line."""
    sizes = [int(a) for a in sys.argv[1:]] or (
        [20_000] if os.environ.get("BENCH_QUICK") == "1" else [20_000, 100_000]
    )
    cases = []
    where = os.environ.get("BENCH_DIR")
    for rows in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-end-", dir=where) as tmp:
            cases.append(asyncio.run(_case(Path(tmp), rows)))
    print(json.dumps({"name": "end", "cases": cases}))


if __name__ == "__main__":
    main()
