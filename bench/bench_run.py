"""`batchwan run` against a minimal aiohttp loop, side by side on one simulator process.

    python -m bench.bench_run [ROWS CONCURRENCY download|no-download]   (default: the matrix)

For each case both sides run one after the other against the same simulator process (instant
tasks), at the same concurrency and poll interval, each in a fresh child process; the figure is
the ratio of their wall times. The minimal loop creates, polls and (with downloads) writes each
video to a file and fsyncs it, keeping no record; batchwan commits every transition durably
(SQLite, synchronous=FULL), keeps results.csv fresh, and writes the outputs at the end.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.simproc import measure, simulator, stats

POLL_INTERVAL = 0.05
#: (rows, concurrency, download): the full matrix, and the subset of BENCH_QUICK=1.
CASES = [
    (rows, concurrency, download)
    for download in (False, True)
    for concurrency in (64, 512)
    for rows in (2_000, 10_000)
]
#: Alternating runs of both sides per case (the best of each is the figure).
REPEAT = int(os.environ.get("BENCH_REPEAT", "2"))
QUICK_CASES = [(2_000, 64, True), (10_000, 64, True), (10_000, 64, False), (10_000, 512, False)]


def write_sheet(path: Path, rows: int, tag: str, start: int = 0) -> None:
    """A CSV of ``rows`` distinct URL-image rows (appended to when the file exists)."""
    new = not path.exists()
    with path.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(["prompt", "image", "duration", "resolution"])
        for i in range(start, start + rows):
            writer.writerow(
                [f"{tag} row {i}: waves", f"https://img.example.com/{i}.jpg", 5, "480P"]
            )


def batchwan_args(sheet: Path, out: Path, base: str, concurrency: int, *extra: str) -> list[str]:
    """The options of a bench run: no rate limit of our own, fast polls, quiet."""
    return [
        "run", str(sheet), "--out", str(out), "--base-url", base,
        "--concurrency", str(concurrency), "--rate", "100000", "--poll-rate", "100000",
        "--poll-interval", str(POLL_INTERVAL), "--quiet", *extra,
    ]  # fmt: skip


def bench_env() -> dict[str, str]:
    """The environment of a child: a key for the simulator (it checks none)."""
    return {**os.environ, "MULEROUTER_API_KEY": "bench-key"}


def _sides(base: str, rows: int, concurrency: int, download: bool, folder: Path, rep: int
           ) -> tuple[dict[str, Any], dict[str, Any], int]:  # fmt: skip
    tag = f"c{concurrency}-{rows}-{'dl' if download else 'nodl'}-{rep}"
    loop_args = [base, str(rows), str(concurrency), str(POLL_INTERVAL), f"minimal {tag}"]
    if download:
        loop_args.append(str(folder / f"minimal-videos-{rep}"))
    minimal = measure("bench.minimal_loop", loop_args)
    sheet, out = folder / f"bench-{rep}.csv", folder / f"run-{rep}"
    write_sheet(sheet, rows, f"batchwan {tag}")
    extra = () if download else ("--no-download",)
    ours = measure("batchwan", batchwan_args(sheet, out, base, concurrency, *extra), bench_env())
    if ours["returncode"] != 0:
        raise RuntimeError(f"batchwan run failed: {ours['stderr_tail']}")
    videos = len(list((out / "videos").glob("*.mp4"))) if download else 0
    return minimal, ours, videos


def one_case(base: str, rows: int, concurrency: int, download: bool) -> dict[str, Any]:
    """Both sides of one case, alternating, ``REPEAT`` times; the best of each and the ratio.

    The machine is shared: the best of a few alternating runs is the figure least disturbed
    by whatever else runs, and each pair's own ratio shows the spread.
    """
    minimal: list[dict[str, Any]] = []
    ours: list[dict[str, Any]] = []
    before = stats(base)
    with tempfile.TemporaryDirectory(prefix="bench-run-", dir=os.environ.get("BENCH_DIR")) as tmp:
        for rep in range(REPEAT):
            floor, mine, videos = _sides(base, rows, concurrency, download, Path(tmp), rep)
            minimal.append(floor)
            ours.append(mine)
            if download and videos != rows:
                raise RuntimeError(f"batchwan downloaded {videos} of {rows} videos")
    after = stats(base)
    best_min = min(minimal, key=lambda f: f["wall_s"])
    best_ours = min(ours, key=lambda f: f["wall_s"])
    return {
        "rows": rows,
        "concurrency": concurrency,
        "download": download,
        "minimal_s": best_min["wall_s"],
        "batchwan_s": best_ours["wall_s"],
        "ratio": round(best_ours["wall_s"] / best_min["wall_s"], 2),
        "pair_ratios": "/".join(
            f"{o['wall_s'] / m['wall_s']:.2f}" for m, o in zip(minimal, ours, strict=True)
        ),
        "minimal_cpu_s": best_min["cpu_s"],
        "batchwan_cpu_s": best_ours["cpu_s"],
        "minimal_peak_mb": best_min["peak_rss_mb"],
        "batchwan_peak_mb": max(f["peak_rss_mb"] for f in ours),
        "duplicates": after["duplicate_payloads"] - before["duplicate_payloads"],
        "tasks_per_side": (after["tasks_created"] - before["tasks_created"]) // (2 * REPEAT),
    }


def run(cases: list[tuple[int, int, bool]]) -> list[dict[str, Any]]:
    """Every case against one simulator process."""
    with simulator() as base:
        return [one_case(base, *case) for case in cases]


def main() -> None:
    """The matrix (or BENCH_QUICK's subset, or one case from the arguments), as JSON lines."""
    if len(sys.argv) == 4:
        cases = [(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "download")]
    else:
        cases = QUICK_CASES if os.environ.get("BENCH_QUICK") == "1" else CASES
    results = run(cases)
    print(json.dumps({"name": "run", "cases": results}))


if __name__ == "__main__":
    main()
