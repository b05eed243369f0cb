"""The store: one runner on PostgreSQL beside one on SQLite, three runners beside one, and what
folding the WAL into state.db after each sending mark and task id costs.

Every figure is a ratio of wall times measured side by side in this process, against one
simulator process with instant tasks; the PostgreSQL server is a throwaway one (fsync on).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bench_run import write_sheet
from bench.simproc import simulator
from tests.pgserver import running_server

LIMITS = (
    "--concurrency", "16", "--rate", "200", "--poll-rate", "1000", "--poll-interval", "0.05",
    "--quiet",
)  # fmt: skip


def _runners(sheet: Path, outs: list[Path], base_url: str, store: str | None) -> float:
    """Wall time of ``len(outs)`` runners started together on one sheet."""
    env = {**os.environ, "MULEROUTER_API_KEY": "bench-key"}
    env.pop("BATCHWAN_BASE_URL", None)
    extra = ["--store", store] if store else []
    command = [sys.executable, "-m", "batchwan", "run", str(sheet), "--base-url", base_url]
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            [*command, "--out", str(out), *LIMITS, *extra],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for out in outs
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=900)
        if proc.returncode != 0:
            raise RuntimeError(f"a runner failed: {err.decode()[-2000:]}")
    return time.perf_counter() - start


def _checkpoint_cost(rows: int) -> dict[str, float]:
    """Mark and accept ``rows`` rows through the SQLite store, with and without the fold."""
    from batchwan.store import writer
    from tests.storehelpers import checked_rows, open_sqlite

    async def play(store: Any, keys: list[str]) -> None:
        async def one(key: str) -> None:
            await store.begin_create(key)
            await store.create_accepted(key, f"t-{key}")

        await asyncio.gather(*(one(k) for k in keys))

    times = {}
    original = writer.Writer._checkpoint
    with tempfile.TemporaryDirectory() as folder:
        for label, fold in (("with_fold", True), ("without_fold", False)):
            base = Path(folder) / label
            rows_ = checked_rows(base, rows)
            writer.Writer._checkpoint = original if fold else (lambda self, now: None)  # type: ignore[method-assign]  # the one switch measured
            store = open_sqlite(base / "run", rows_)
            start = time.perf_counter()
            asyncio.run(play(store, [r.key for r in rows_]))
            times[label] = time.perf_counter() - start
            store.close()
    writer.Writer._checkpoint = original  # type: ignore[method-assign]  # put back
    return times


def run(rows: int = 1000) -> dict[str, float]:
    """The figures: seconds for each set-up, and their ratios."""
    figures: dict[str, float] = {}
    with (
        simulator() as base_url,
        tempfile.TemporaryDirectory() as folder,
        running_server(fsync=True) as pg,
    ):
        root = Path(folder)
        import psycopg

        for name in ("one", "three"):
            with psycopg.connect(pg.url(), autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {name}")

        def sheet(tag: str) -> Path:
            path = root / f"{tag}.csv"
            write_sheet(path, rows, tag)
            return path

        sqlite_s = _runners(sheet("sqlite"), [root / "a" / "run"], base_url, None)
        pg_one_s = _runners(sheet("pg1"), [root / "b" / "run"], base_url, pg.url("one"))
        outs = [root / f"c{i}" / "run" for i in range(3)]
        pg_three_s = _runners(sheet("pg3"), outs, base_url, pg.url("three"))
    figures["rows"] = rows
    figures["sqlite_one_runner_s"] = round(sqlite_s, 2)
    figures["postgres_one_runner_s"] = round(pg_one_s, 2)
    figures["postgres_three_runners_s"] = round(pg_three_s, 2)
    figures["postgres_over_sqlite"] = round(pg_one_s / sqlite_s, 2)
    figures["three_runners_over_one"] = round(pg_three_s / pg_one_s, 2)
    fold = _checkpoint_cost(2000)
    figures["sqlite_2000_marks_with_wal_fold_s"] = round(fold["with_fold"], 2)
    figures["sqlite_2000_marks_without_fold_s"] = round(fold["without_fold"], 2)
    figures["wal_fold_cost_ratio"] = round(fold["with_fold"] / fold["without_fold"], 2)
    return figures


if __name__ == "__main__":
    import json

    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)))
