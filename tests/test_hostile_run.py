"""Whole runs against a hostile provider: no double bill, no hang, no leak, no stopped run.

Each test scripts one bad answer and pins what must happen: the creates sent, the row's status
and message, the exit code, and that nothing outside the run folder was touched.
"""

from __future__ import annotations

import csv
import errno
from pathlib import Path

import pytest

from batchwan.store.ledger import Ledger
from tests.hostile_server import (
    Hostile,
    answer,
    complete,
    completed_with,
    created_as,
    deep,
    endless,
    serving,
    then,
    trickle,
)
from tests.runhelpers import fast_options, invoke, read_results, write_sheet

MP4_HEAD = b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2"


def _run(server: Hostile, sheet: Path, out: Path, *extra: str) -> tuple[int, str]:
    result = invoke(["run", str(sheet), *fast_options(server.base_url, out), *extra])
    return result.exit_code, result.output


def _tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def _only_run_folder_touched(tmp_path: Path, before: set[str]) -> None:
    """Nothing new under tmp_path except inside the run folder."""
    new = {p for p in _tree(tmp_path) - before if not p.startswith("run")}
    assert new == set()


# -- hangs ---------------------------------------------------------------------------------------


def test_trickled_create_is_unknown_after_its_deadline(tmp_path: Path) -> None:
    """A create answered one byte at a time ends `unknown` at its deadline, sent once."""
    sheet = write_sheet(tmp_path, 1)
    body = b'{"task_info": {"id": "t-1", "status": "pending"}}'
    with serving(Hostile(create=trickle(body, 0.1))) as server:
        code, output = _run(server, sheet, tmp_path / "run", "--create-deadline", "0.5")
        assert server.seen["create"] == 1
    assert code == 1, output
    [row] = read_results(tmp_path / "run")
    assert row["status"] == "unknown"
    assert "0.5 s deadline" in row["error"]
    assert "may or may not exist" in row["error"]
    assert row["attempts"] == "1"


def test_trickled_poll_is_asked_again_and_the_row_succeeds(tmp_path: Path) -> None:
    """A poll answered one byte at a time is cut at its deadline and asked again."""
    sheet = write_sheet(tmp_path, 1)
    server = Hostile(poll=then(trickle(b'{"task_info": {"status": "running"}}', 0.2), complete))
    with serving(server):
        code, output = _run(server, sheet, tmp_path / "run", "--poll-deadline", "0.3")
        assert server.seen["create"] == 1
        assert server.seen["poll"] == 2
    assert code == 0, output
    [row] = read_results(tmp_path / "run")
    assert row["status"] == "succeeded"
    assert row["video_file"]


def test_trickled_video_is_tried_again_then_noted(tmp_path: Path) -> None:
    """A video sent one byte at a time is cut at its deadline, tried 3 times, then noted."""
    sheet = write_sheet(tmp_path, 1)
    with serving(Hostile(video=trickle(MP4_HEAD * 100, 0.05))) as server:
        code, output = _run(server, sheet, tmp_path / "run", "--download-deadline", "0.3")
        assert server.seen["video"] == 3
        assert server.seen["create"] == 1
    assert code == 1, output
    [row] = read_results(tmp_path / "run")
    assert row["status"] == "succeeded"
    assert row["video_file"] == ""
    assert "video not downloaded" in row["error"]
    assert "0.3 s deadline" in row["error"]
    assert not list((tmp_path / "run" / "videos").iterdir())


# -- one bad value must not stop every run --------------------------------------------------------


@pytest.mark.parametrize(
    "task_id", ["a/b", "../../etc/x", "..", "x" * 500, "a b", "\x1b[31mred", 12.5, ["t"]]
)
def test_unusable_task_id_is_that_rows_unknown_and_reruns_go_on(
    tmp_path: Path, task_id: object
) -> None:
    """A task id unfit for a URL or file is the row's `unknown`; the other rows go on; exit 1."""
    sheet = write_sheet(tmp_path, 3)
    before = _tree(tmp_path)
    server = Hostile()
    server.create = then(created_as(task_id), server.create)
    with serving(server):
        code, output = _run(server, sheet, tmp_path / "run", "--concurrency", "1")
        assert code == 1, output
        again, output = _run(server, sheet, tmp_path / "run")
        assert again == 1, output
        assert server.seen["create"] == 3
    rows = read_results(tmp_path / "run")
    assert [r["status"] for r in rows] == ["unknown", "succeeded", "succeeded"]
    assert "task id that is not usable" in rows[0]["error"]
    assert "\x1b" not in rows[0]["error"]
    _only_run_folder_touched(tmp_path, before)


@pytest.mark.parametrize(
    ("video", "reason"),
    [
        ("http://[::1", "not a valid URL"),
        ("http://host:port/v.mp4", "not a valid URL"),
        ("ftp://example.com/v.mp4", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("http:///v.mp4", "no host"),
        ("http://169.254.169.254/latest/meta-data/", "link-local address"),
        ("http://[::ffff:169.254.169.254]/", "link-local address"),
        ("http://10.1.2.3/v.mp4", "private address"),
    ],
)
def test_refused_video_link_fails_the_row_and_the_run_goes_on(
    tmp_path: Path, video: str, reason: str
) -> None:
    """A video link that is invalid or points inside the network fails its row, unfetched."""
    sheet = write_sheet(tmp_path, 2)
    before = _tree(tmp_path)
    server = Hostile()
    server.poll = then(completed_with(video), server.poll)
    with serving(server):
        code, output = _run(server, sheet, tmp_path / "run", "--concurrency", "1")
        assert server.seen["video"] == 1  # only the good row's
        assert server.seen["create"] == 2
    assert code == 1, output
    rows = read_results(tmp_path / "run")
    assert [r["status"] for r in rows] == ["failed", "succeeded"]
    assert reason in rows[0]["error"]
    assert rows[0]["video_file"] == ""
    _only_run_folder_touched(tmp_path, before)


def test_deeply_nested_poll_is_asked_again(tmp_path: Path) -> None:
    """A poll body nested 100,000 levels deep is an unreadable answer: asked again, no crash."""
    sheet = write_sheet(tmp_path, 1)
    server = Hostile()
    server.poll = then(answer(200, text=deep(100_000).decode()), server.poll, times=2)
    with serving(server):
        code, output = _run(server, sheet, tmp_path / "run")
        assert server.seen["poll"] == 3
    assert code == 0, output
    assert read_results(tmp_path / "run")[0]["status"] == "succeeded"


# -- no size limits ------------------------------------------------------------------------------


def test_endless_task_id_is_read_only_to_the_cap(tmp_path: Path) -> None:
    """A create answer whose task id never ends: read to 1 MB, the row unknown, state small."""
    sheet = write_sheet(tmp_path, 1)
    with serving(Hostile(create=endless(b'{"task_info": {"id": "', b"x"))) as server:
        code, output = _run(server, sheet, tmp_path / "run")
        sent = server.bytes_sent
    assert code == 1, output
    assert sent < 16 << 20  # the client hung up; the server would have sent 64 MB
    [row] = read_results(tmp_path / "run")
    assert row["status"] == "unknown"
    assert "more than 1048576 bytes" in row["error"]
    assert sum(p.stat().st_size for p in (tmp_path / "run").rglob("*")) < 2 << 20


def test_endless_poll_body_is_read_only_to_the_cap(tmp_path: Path) -> None:
    """A poll answer without end is cut at 1 MB and asked again; the row then succeeds."""
    sheet = write_sheet(tmp_path, 1)
    server = Hostile()
    server.poll = then(endless(b'{"task_info": {"status": "', b"r"), server.poll)
    with serving(server):
        code, output = _run(server, sheet, tmp_path / "run")
        sent = server.bytes_sent
    assert code == 0, output
    assert sent < 16 << 20


def test_endless_video_is_refused_at_the_cap(tmp_path: Path) -> None:
    """A video without end stops at --max-video-mb: the row fails, no file is left."""
    sheet = write_sheet(tmp_path, 1)
    with serving(Hostile(video=endless(MP4_HEAD))) as server:
        code, output = _run(server, sheet, tmp_path / "run", "--max-video-mb", "1")
        sent = server.bytes_sent
    assert code == 1, output
    assert sent < 16 << 20
    [row] = read_results(tmp_path / "run")
    assert row["status"] == "failed"
    assert "larger than the 1 MB limit" in row["error"]
    assert list((tmp_path / "run" / "videos").iterdir()) == []


@pytest.mark.parametrize(
    ("page", "reason"),
    [
        (
            b"<html><body>Access denied</body></html>",
            "not an MP4 video (it starts '<html><body>Acc",
        ),
        (b"", "empty file"),
        (b"\0\0\0", "not an MP4"),
    ],
)
def test_a_200_that_is_not_an_mp4_fails_the_row(tmp_path: Path, page: bytes, reason: str) -> None:
    """An HTML page (or nothing) answered with 200 is never saved as .mp4 nor `succeeded`."""
    sheet = write_sheet(tmp_path, 1)
    server = Hostile(video=answer(200, text=page.decode("latin-1")))
    with serving(server):
        code, output = _run(server, sheet, tmp_path / "run")
        assert server.seen["video"] == 1  # refused for good: not asked again
    assert code == 1, output
    [row] = read_results(tmp_path / "run")
    assert row["status"] == "failed"
    assert reason in row["error"]
    assert list((tmp_path / "run" / "videos").iterdir()) == []


# -- leaks ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["create", "poll"])
def test_provider_text_is_stored_without_escapes_or_control_characters(
    tmp_path: Path, where: str
) -> None:
    """Escape sequences and newlines in the provider's reason never reach the record."""
    sheet = write_sheet(tmp_path, 1)
    nasty = "\x1b[2J\x1b]0;owned\x07bad\r\nINFO forged line\x00\u202e"
    server = Hostile()
    if where == "create":
        server.create = answer(400, {"detail": nasty})
    else:
        server.poll = answer(
            200, {"task_info": {"id": "t", "status": "failed", "error": {"detail": nasty}}}
        )
    with serving(server):
        code, output = _run(server, sheet, tmp_path / "run")
    assert code == 1, output
    [row] = read_results(tmp_path / "run")
    assert row["status"] == "failed"
    assert "bad INFO forged line" in row["error"]
    assert all(ch.isprintable() for ch in row["error"])
    assert "\u202e" not in row["error"]


# -- data ----------------------------------------------------------------------------------------


def _id_sheet(path: Path, ids: list[str]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "prompt", "image", "duration", "resolution"])
        for row_id in ids:
            writer.writerow([row_id, f"prompt {row_id}", "https://i.example.com/a.jpg", 5, "480P"])
    return path


def test_video_names_stay_unique_when_rows_are_inserted(tmp_path: Path) -> None:
    """Ids `a b` and `a_b` at the same position in turn: each keeps its own video file."""
    sheet = tmp_path / "sheet.csv"
    out = tmp_path / "run"
    with serving(Hostile()) as server:
        _id_sheet(sheet, ["x", "a b"])
        assert _run(server, sheet, out)[0] == 0
        first = {r["id"]: r["video_file"] for r in read_results(out)}
        _id_sheet(sheet, ["x", "a_b", "a b"])
        code, output = _run(server, sheet, out)
        assert code == 0, output
    rows = {r["id"]: r for r in read_results(out)}
    files = [rows[i]["video_file"] for i in ("x", "a_b", "a b")]
    assert len(set(files)) == 3
    assert rows["a b"]["video_file"] == first["a b"]
    contents = {(out / f).read_bytes() for f in files}
    assert len(contents) == 3  # no file was overwritten by another row's video


def test_full_disk_on_the_record_says_so_and_keeps_every_task_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC when recording accepted tasks: exit 1, a clear message, every task id printed."""
    sheet = write_sheet(tmp_path, 3)

    async def full(self: Ledger, key: str, task_id: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Ledger, "create_accepted", full)
    with serving(Hostile()) as server:
        result = invoke(
            ["run", str(sheet), *fast_options(server.base_url, tmp_path / "run"), "--rate", "1"]
        )
        accepted = list(server.task_ids)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "the disk is full" in result.stderr
    assert accepted
    for task_id in accepted:
        assert task_id in result.stderr
    log = (tmp_path / "run" / "run.log").read_text(encoding="utf-8")
    assert f"as task {accepted[0]}" in log


def test_full_disk_on_a_download_says_so_and_a_rerun_collects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC while saving a video: exit 1 with a clear message; the next run downloads it."""
    import batchwan.provider.downloads as downloads

    sheet = write_sheet(tmp_path, 1)
    real_open = downloads.open_part

    class FullFile:
        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        def writelines(self, chunks: list[bytes]) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        def close(self) -> None:
            pass

    monkeypatch.setattr(downloads, "open_part", lambda path: FullFile())
    with serving(Hostile()) as server:
        result = invoke(["run", str(sheet), *fast_options(server.base_url, tmp_path / "run")])
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        assert "the disk is full" in result.stderr
        assert list((tmp_path / "run" / "videos").iterdir()) == []
        monkeypatch.setattr(downloads, "open_part", real_open)
        again = invoke(["run", str(sheet), *fast_options(server.base_url, tmp_path / "run")])
        assert again.exit_code == 0, again.output
        assert server.seen["create"] == 1
    [row] = read_results(tmp_path / "run")
    assert row["status"] == "succeeded"
    assert (tmp_path / "run" / row["video_file"]).read_bytes()[4:8] == b"ftyp"
