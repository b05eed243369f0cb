"""results.csv on a rerun: only the new tail is appended when every row written before is
unchanged and in place; anything else replaces the file whole. Either way it equals a rewrite."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from recordfactory import record

from batchwan.outputs.results import (
    RESULTS_FILE,
    results_text,
    write_results_csv,
    write_results_text,
)
from batchwan.values import Status


def _rows(count: int, start: int = 1) -> list:
    return [record(i, extra={"note": f"n{i}"}) for i in range(start, start + count)]


def _inode(path: Path) -> int:
    return path.stat().st_ino


def test_added_rows_are_appended_and_the_file_equals_a_full_rewrite(tmp_path: Path) -> None:
    """Rows added at the end of the sheet go on the end of the same file (same inode: not a
    rename), and the bytes are exactly those a full rewrite writes."""
    path = write_results_csv(tmp_path, _rows(50), ["note"])
    before = _inode(path)
    records = _rows(53)
    assert write_results_text(path, results_text(records, ["note"])) == "appended"
    assert _inode(path) == before
    assert path.read_bytes() == results_text(records, ["note"]).encode("utf-8")


def test_nothing_new_writes_nothing(tmp_path: Path) -> None:
    """A rerun with no change leaves the file as it is."""
    path = write_results_csv(tmp_path, _rows(5), ["note"])
    stamp = path.stat().st_mtime_ns
    assert write_results_text(path, results_text(_rows(5), ["note"])) == "unchanged"
    assert path.stat().st_mtime_ns == stamp


def test_a_changed_earlier_row_replaces_the_file_whole(tmp_path: Path) -> None:
    """A row before the tail changed (its status, say): the file is replaced by a rename."""
    path = write_results_csv(tmp_path, _rows(20), ["note"])
    before = _inode(path)
    records = _rows(22)
    records[3] = dataclasses.replace(records[3], status=Status.FAILED, error="boom")
    assert write_results_text(path, results_text(records, ["note"])) == "replaced"
    assert _inode(path) != before
    assert path.read_bytes() == results_text(records, ["note"]).encode("utf-8")


@pytest.mark.parametrize(
    "change",
    ["new own column", "shorter sheet", "other order", "last row changed"],
)
def test_anything_but_an_added_tail_replaces_the_file(tmp_path: Path, change: str) -> None:
    """A new column (a new header), rows removed, rows reordered, or the last written row
    changed: never an append, always the bytes of a full rewrite."""
    path = write_results_csv(tmp_path, _rows(10), ["note"])
    records, columns = _rows(12), ["note"]
    if change == "new own column":
        columns = ["note", "owner"]
    elif change == "shorter sheet":
        records = _rows(9)
    elif change == "other order":
        records = [records[1], records[0], *records[2:]]
    else:
        records[9] = dataclasses.replace(records[9], attempts=2)
    assert write_results_text(path, results_text(records, columns)) == "replaced"
    assert path.read_bytes() == results_text(records, columns).encode("utf-8")


def test_a_file_cut_by_a_crash_is_completed(tmp_path: Path) -> None:
    """A crash in the middle of an append left half a line: the next write finds the file is
    still the start of what it must hold and completes it; a cut that no longer matches (a
    row changed meanwhile) is replaced."""
    path = tmp_path / RESULTS_FILE
    full = results_text(_rows(30), ["note"]).encode("utf-8")
    path.write_bytes(full[: len(full) - 17])  # cut inside the last line
    assert write_results_text(path, full.decode("utf-8")) == "appended"
    assert path.read_bytes() == full
    path.write_bytes(full[: len(full) - 17])
    changed = _rows(30)
    changed[-1] = dataclasses.replace(changed[-1], status=Status.FAILED)
    assert write_results_text(path, results_text(changed, ["note"])) == "replaced"
    assert path.read_bytes() == results_text(changed, ["note"]).encode("utf-8")


def test_missing_or_empty_file_is_written_whole(tmp_path: Path) -> None:
    """No file yet, or an empty one: a full write."""
    path = tmp_path / RESULTS_FILE
    assert write_results_text(path, results_text(_rows(3))) == "replaced"
    path.write_bytes(b"")
    assert write_results_text(path, results_text(_rows(3))) == "replaced"
    assert path.read_bytes() == results_text(_rows(3)).encode("utf-8")


def test_a_failed_append_leaves_the_old_file_then_replaces_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills in the middle of the append: what was written of the tail is cut off
    again and the file is replaced whole (here that works: the disk had room for a rename)."""
    path = write_results_csv(tmp_path, _rows(10), ["note"])
    real_pwrite = os.pwrite

    def short_write(fd: int, data: bytes, offset: int) -> int:
        return real_pwrite(fd, data[: len(data) // 2], offset)

    monkeypatch.setattr(os, "pwrite", short_write)
    records = _rows(14)
    assert write_results_text(path, results_text(records, ["note"])) == "replaced"
    assert path.read_bytes() == results_text(records, ["note"]).encode("utf-8")
