"""Builders of RowRecords, images and run folders for the report, xlsx and status tests."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from PIL import Image

from batchwan.values import CheckedRow, RowIssue, RowRecord, Status

T0 = datetime(2025, 3, 1, 10, 0, 0, tzinfo=UTC)

HOSTILE = (
    "</script><script>document.documentElement.setAttribute('data-pwned','1')</script>"
    "<img src=x onerror=\"document.documentElement.setAttribute('data-pwned','2')\"> & <!-- "
)


def record(position: int, status: Status = Status.SUCCEEDED, **fields: Any) -> RowRecord:
    """A RowRecord with plausible defaults for everything not given."""
    values: dict[str, Any] = {
        "position": position,
        "key": f"key-{position}",
        "row_id": f"r{position}",
        "status": status,
        "cost": 0.5,
        "resolution": "720P",
        "duration": 5,
        "prompt": f"A cat on a windowsill, take {position}",
        "image": "https://example.invalid/cat.png",
    }
    if status in (Status.SUCCEEDED, Status.FAILED, Status.RUNNING, Status.UNKNOWN):
        values["attempts"] = 1
    if status in (Status.SUCCEEDED, Status.FAILED, Status.RUNNING):
        values["task_id"] = f"task-{position:04d}"
        values["submitted_at"] = T0 + timedelta(seconds=10 * position)
    if status in (Status.SUCCEEDED, Status.FAILED):
        values["finished_at"] = values["submitted_at"] + timedelta(seconds=60 + position)
    values.update(fields)
    return RowRecord(**values)


def summary(
    records: Sequence[RowRecord],
    *,
    wall_seconds: float | None = 725.0,
    median: float | None = 130.0,
    p90: float | None = 270.0,
    max_cost: float | None = 10.0,
) -> dict[str, Any]:
    """A summary.json-shaped mapping with round, known figures."""
    counts = {s.value: sum(1 for r in records if r.status is s) for s in Status}
    return {
        "rows": len(records),
        "counts": counts,
        "video_seconds": {"total": 60, "by_resolution": {"720P": 50, "1080P": 10}},
        "cost": {
            "currency": "USD",
            "estimated": 6.0,
            "committed": 5.0,
            "spent": 4.0,
            "max_cost": max_cost,
        },
        "timings": {
            "started_at": "2025-03-01T10:00:00Z",
            "updated_at": "2025-03-01T10:12:05Z",
            "wall_seconds": wall_seconds,
            "render_seconds_median": median,
            "render_seconds_p90": p90,
        },
    }


def image(path: Path, size: tuple[int, int] = (640, 360), colour: str = "#4c8bf5") -> Path:
    """Write a plain picture with a stripe (so a thumbnail is not one colour) and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    picture = Image.new("RGB", size, colour)
    picture.paste("#ffffff", (0, size[1] // 3, size[0], size[1] // 2))
    picture.save(path)
    return path


def video(run_dir: Path, name: str) -> str:
    """Put a tiny stand-in video file in the run's videos/ and return its relative path."""
    folder = run_dir / "videos"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom")
    return f"videos/{name}"


def mixed_run(run_dir: Path) -> list[RowRecord]:
    """A small run with every outcome: videos on disk, local images, errors worth grouping."""
    pictures = [
        image(run_dir.parent / "sheet" / f"frame-{i}.png", colour=c)
        for i, c in enumerate(("#4c8bf5", "#e8a33d", "#3fa46a"))
    ]
    records = []
    for pos in range(1, 13):
        records.append(
            record(
                pos,
                image=str(pictures[pos % 3]),
                video_file=video(run_dir, f"{pos}-r{pos}.mp4"),
                video_url=f"https://assets.example.invalid/{pos}.mp4",
                extra={"campaign": "spring", "owner": "dana"},
            )
        )
    records += [
        record(
            13,
            Status.FAILED,
            error="3001 Task Execution Error Video generation failed: Invalid image dimensions",
        ),
        record(
            14,
            Status.FAILED,
            error="3001 Task Execution Error Video generation failed: Invalid image dimensions",
        ),
        record(15, Status.FAILED, error="3005 Task Execution Error prompt violation"),
        record(
            16,
            Status.UNKNOWN,
            error="a create was sent but its answer was lost; the task may or may not exist",
        ),
        record(17, Status.INVALID, error="duration: must be 5 or 10, got 7"),
        record(18, Status.INVALID, error="duration: must be 5 or 10, got 12"),
        record(19, Status.DUPLICATE, error="same content as row 3"),
        record(20, Status.RUNNING),
        record(21, Status.PENDING),
        record(22, Status.SUCCEEDED, prompt=HOSTILE, row_id="<b>bold</b>", video_file=None),
    ]
    return records


def make_run(
    tmp_path: Path, *, all_succeed: bool = False, extras: Sequence[dict[str, str]] = ()
) -> Path:
    """A real run folder written through the ledger: a success with its video on disk, a failed
    task, an invalid row and a row not sent yet (or, with ``all_succeed``, two successes);
    ``extras`` are the rows' own cells (default: campaign spring)."""
    from batchwan.store.ledger import Ledger

    run_dir = tmp_path / "run"
    sheet = tmp_path / "demo.csv"
    sheet.write_text("prompt,image\n", encoding="utf-8")
    picture = image(tmp_path / "frame.png")

    def row(position: int, status: Status = Status.PENDING, **kw: Any) -> CheckedRow:
        return CheckedRow(
            position=position,
            key=f"k{position}",
            row_id=f"shot-{position}",
            status=status,
            request={"prompt": f"take {position}", "image": str(picture), "duration": 5},
            image_path=picture,
            content_hash=f"h{position}",
            extra=dict(extras[position - 1]) if extras else {"campaign": "spring"},
            **kw,
        )

    rows = [row(1), row(2)]
    if not all_succeed:
        problem = RowIssue(3, "duration", "must be 5 or 10, got 7")
        rows += [row(3, Status.INVALID, issues=(problem,)), row(4)]
    ledger = Ledger(run_dir)
    try:
        ledger.claim(sheet, "wan2.5-i2v-preview")
        ledger.sync_sheet(rows, [0.5] * len(rows), list(extras[0]) if extras else ["campaign"])

        async def play() -> None:
            for key, ok in (("k1", True), ("k2", all_succeed)):
                await ledger.begin_create(key)
                await ledger.create_accepted(key, f"task-{key}")
                if ok:
                    await ledger.task_finished(key, Status.SUCCEEDED, video_url="https://x/1.mp4")
                    await ledger.note(key, None, video_file=video(run_dir, f"{key}.mp4"))
                else:
                    error = "3001 Task Execution Error Invalid image dimensions"
                    await ledger.task_finished(key, Status.FAILED, error=error)

        asyncio.run(play())
    finally:
        ledger.close()
    return run_dir
