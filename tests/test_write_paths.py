"""The threads behind the hot path: the record's writer with a side file, the video finisher,
run.log's flusher, and the rate window's single timer."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from batchwan.cli.common import RunLogHandler, SafeFormatter
from batchwan.errors import StateError
from batchwan.pool.limits import RateWindow
from batchwan.provider import finisher as finisher_module
from batchwan.provider.finisher import FileFinisher
from batchwan.store import repeats
from batchwan.store.repeats import RepeatIndex
from batchwan.store.writer import Batch, Writer
from batchwan.values import CheckedRow, Status

KEY = "sk-test-0123456789abcdef"


def _writer_with_table(tmp_path: Path) -> Writer:
    writer = Writer(tmp_path / "state.db")
    writer.write_now([("CREATE TABLE t (v INTEGER)", ())])
    return writer


async def _write(writer: Writer, sql: str, params: tuple[object, ...], side: object = None) -> None:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()
    writer.submit(Batch([(sql, params)], loop, future, side=side))  # type: ignore[arg-type]
    await future


async def test_a_side_file_fails_alone(tmp_path: Path) -> None:
    """One group holds a record write and a side write that fails: the record's is durable, the
    side's caller gets the error, and the writer goes on serving both."""
    writer = _writer_with_table(tmp_path)
    side = writer.add_side(tmp_path / "side.db")
    try:
        record = _write(writer, "INSERT INTO t VALUES (?)", (1,))
        broken = _write(writer, "INSERT INTO missing VALUES (?)", (1,), side)
        results = await asyncio.gather(record, broken, return_exceptions=True)
        assert results[0] is None
        assert isinstance(results[1], StateError)
        await _write(writer, "CREATE TABLE s (v INTEGER)", (), side)
        await _write(writer, "INSERT INTO s VALUES (?)", (2,), side)
        await _write(writer, "INSERT INTO t VALUES (?)", (3,))
    finally:
        writer.close()
    with sqlite3.connect(tmp_path / "state.db") as conn:
        assert [v for (v,) in conn.execute("SELECT v FROM t ORDER BY v")] == [1, 3]
    with sqlite3.connect(tmp_path / "side.db") as conn:
        assert [v for (v,) in conn.execute("SELECT v FROM s")] == [2]


async def test_the_index_rides_on_the_record_writer_and_never_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The index written by the record's thread: its rows land; when its file cannot be written
    the send goes on, and the warning is said once."""
    writer = _writer_with_table(tmp_path)
    index = RepeatIndex(tmp_path / "sent.db", "https://api.example.com", KEY, writer=writer)
    row = CheckedRow(1, "k1", "k1", Status.PENDING, {"prompt": "p"}, None, "h" * 64)
    try:
        await index.about_to_send(row, tmp_path / "a")
        assert index.earlier(["h" * 64], tmp_path / "b")["h" * 64].task_id is None
        for n in range(repeats.ACCEPTED_BATCH):  # a full batch of task ids is written at once
            await index.accepted(row, tmp_path / "a", f"task-{n}")
        last = f"task-{repeats.ACCEPTED_BATCH - 1}"
        assert index.earlier(["h" * 64], tmp_path / "b")["h" * 64].task_id == last
        with sqlite3.connect(tmp_path / "sent.db") as conn:
            conn.execute("DROP TABLE sent")  # every later index write now fails
        with caplog.at_level(logging.WARNING):
            await index.about_to_send(row, tmp_path / "a")
            await index.accepted(row, tmp_path / "a", "task-2")
        warnings = [r for r in caplog.records if "sent.db" in r.getMessage()]
        assert len(warnings) == 1
        await _write(writer, "INSERT INTO t VALUES (?)", (7,))  # the record is unharmed
    finally:
        index.close()
        writer.close()


class _Part:
    """A part file as the finisher drives it, failing where told."""

    def __init__(self, folder: Path, name: str, fail_at: str | None = None) -> None:
        self.path = folder / f"{name}.part"
        self.dest = folder / name
        self.fail_at = fail_at
        self.steps: list[str] = []

    def write(self, chunks: list[bytes]) -> None:
        self.steps.append("write")
        if self.fail_at == "write":
            raise OSError(28, "No space left on device")
        self.path.write_bytes(b"".join(chunks))

    def sync(self) -> None:
        self.steps.append("sync")

    def publish(self) -> None:
        self.steps.append("publish")
        self.path.replace(self.dest)


async def test_the_finisher_finishes_a_batch_and_fails_only_the_broken_file(
    tmp_path: Path,
) -> None:
    """Twenty files at once: each written, synced, then renamed; one whose write fails gets its
    own error and is never renamed; the others land whole."""
    finisher = FileFinisher()
    parts = [_Part(tmp_path, f"v{i}.mp4", "write" if i == 7 else None) for i in range(20)]
    results = await asyncio.gather(
        *(finisher.finish(p, [b"ftyp", str(i).encode()]) for i, p in enumerate(parts)),
        return_exceptions=True,
    )
    assert isinstance(results[7], OSError)
    assert parts[7].steps == ["write"]
    assert not parts[7].dest.exists()
    for i, part in enumerate(parts):
        if i != 7:
            assert results[i] is None
            assert part.steps == ["write", "sync", "publish"]
            assert part.dest.read_bytes() == b"ftyp" + str(i).encode()


async def test_the_finisher_thread_ends_when_idle_and_comes_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No thread is left behind after a run; the next file starts one again."""
    monkeypatch.setattr(finisher_module, "IDLE_SECONDS", 0.05)
    finisher = FileFinisher()
    await finisher.finish(_Part(tmp_path, "a.mp4"), [b"a"])
    deadline = time.monotonic() + 5
    while any(t.name == "batchwan-videos" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the finisher thread did not end"
        await asyncio.sleep(0.02)
    await finisher.finish(_Part(tmp_path, "b.mp4"), [b"b"])
    assert (tmp_path / "b.mp4").read_bytes() == b"b"


def _run_log(path: Path) -> tuple[logging.Logger, RunLogHandler]:
    handler = RunLogHandler(path)
    handler.setFormatter(SafeFormatter("%(levelname)s %(message)s", key=None))
    logger = logging.getLogger(f"batchwan.test.{path.name}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return logger, handler


def _wait_for_text(path: Path, text: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if text in path.read_text(encoding="utf-8"):
            return True
        time.sleep(0.01)
    return False


def test_run_log_lines_reach_the_file_soon_without_a_close(tmp_path: Path) -> None:
    """An INFO line is in run.log within a moment while the handler stays open (a tail -f or a
    killed run sees it); a warning too; close writes whatever is left."""
    path = tmp_path / "run.log"
    logger, handler = _run_log(path)
    try:
        logger.info("row 1: accepted as task t-1")
        assert _wait_for_text(path, "row 1: accepted", 10 * RunLogHandler.FLUSH_SECONDS)
        logger.warning("row 2: rejected")
        assert _wait_for_text(path, "row 2: rejected", 10 * RunLogHandler.FLUSH_SECONDS)
        for n in range(500):
            logger.info("row %d: succeeded", n)
    finally:
        logger.removeHandler(handler)
        handler.close()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[-1] == "INFO row 499: succeeded"
    assert len(lines) == 502
    assert not any(t.name == "batchwan-log" for t in threading.enumerate())


async def test_a_fast_window_keeps_one_timer_and_hands_permits_back_late_never_early() -> None:
    """2,000 requests through a 1,000-per-second window: never more than 1,000 in flight or
    answered within the last second, and one timer at a time does the handing back."""
    window = RateWindow(1000)
    loop = asyncio.get_running_loop()
    starts: list[float] = []

    async def one() -> None:
        async with window:
            starts.append(loop.time())

    before = len(loop._scheduled)  # type: ignore[attr-defined]  # the loop's timer heap
    tasks = [asyncio.ensure_future(one()) for _ in range(2000)]
    await asyncio.sleep(0.05)
    live = len(loop._scheduled) - before  # type: ignore[attr-defined]
    await asyncio.gather(*tasks)
    assert live <= 2  # the hand-back timer (and the sleep's own), not one per request
    starts.sort()
    for i in range(len(starts) - 1000):
        assert starts[i + 1000] - starts[i] >= 1.0 - 1e-6
