"""Images and audio from public repositories get the verdict the corpus README predicts."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from batchwan.checks.media import probe_audio, probe_image
from batchwan.checks.validation import check_rows
from batchwan.sheet.loader import read_sheet
from batchwan.values import JobSpec, Status

pytestmark = pytest.mark.corpus

# file -> the words each expected problem starts with (empty: accepted)
IMAGES: dict[str, tuple[str, ...]] = {
    "images/flower.jpg": (),
    "images/flower.webp": (),
    "images/xmp_test.jpg": (),
    "images/junk_jpeg_header.jpg": (),
    "images/lossless_color_transform.bmp": (),
    "images/lossless_color_transform.webp": (),
    "images/uncompressed_rgb.png": (),
    "images/transparent.png": ("200x150 px", "has transparent pixels"),
    "images/transparent.webp": ("200x150 px", "has transparent pixels"),
    "images/itxt_chunks.png": ("2400x2000 px",),
    "images/hopper.bmp": ("128x128 px",),
    "images/truncated_image.png": ("the file is damaged",),
    "images/truncated_jpeg.jpg": ("100x100 px", "the file is damaged"),
    "images/broken_data_stream.png": ("128x128 px", "the file is damaged"),
    "images/broken.png": ("not a readable image",),
    "images/reallybig.bmp": ("claims over",),
    "wan-examples/i2v_input.JPG": (),
    "wan-examples/pose.png": (),
    "wan-examples/Five Hundred Miles.png": (),
    "wan-examples/snake.png": (),
    "wan-examples/girl.png": (),
}

# file -> (accepted, seconds to 2 decimals or None)
AUDIO: dict[str, tuple[bool, float | None]] = {
    "audio/test1.wav": (True, 10.01),
    "audio/test2.mp3": (True, 5.04),
    "audio/test4.wav": (True, 8.0),
    "audio/tessst.mp3": (False, 1.57),
    "audio/test1_empty.wav": (False, 0.0),
    "audio/wrong_extension.aac": (False, None),
    "wan-examples/talk.wav": (True, 5.02),
    "wan-examples/sing.MP3": (True, 18.76),
    "wan-examples/Five Hundred Miles.MP3": (True, 5.02),
}

_ALPHA = "basi4a08 basi4a16 basi6a08 basi6a16 basn4a08 basn4a16 basn6a08 basn6a16 bgai4a08"
_ALPHA += " bgai4a16 bgan6a08 bgan6a16 bgbn4a08 bggn4a16 bgwn6a08 bgyn6a16 pp0n6a08"
_TRNS = "tbbn0g04 tbbn2c16 tbbn3p08 tbgn2c16 tbgn3p08 tbrn2c08 tbwn0g16 tbwn3p08 tbyn3p08"
_TRNS += " tm3n3p02 tp1n3p08"
PNGSUITE_TRANSPARENT = {*_ALPHA.split(), *_TRNS.split()}
PNGSUITE_CORRUPT_OPEN = {"xcsn0g01", "xdtn0g01"}  # they open; only verify()/load() fail


@pytest.mark.parametrize(("name", "expected"), IMAGES.items(), ids=list(IMAGES))
def test_image_verdicts(testdata: Path, name: str, expected: tuple[str, ...]) -> None:
    """Each corpus image is accepted or refused for exactly the reasons the README gives."""
    probe = probe_image(testdata / name)
    got = [p.message for p in probe.problems]
    assert len(got) == len(expected), got
    for message, start in zip(got, expected, strict=True):
        assert message.startswith(start)


@pytest.mark.parametrize(("name", "expected"), AUDIO.items(), ids=list(AUDIO))
def test_audio_verdicts(testdata: Path, name: str, expected: tuple[bool, float | None]) -> None:
    """Each corpus audio file is accepted or refused, with the measured duration."""
    ok, seconds = expected
    probe = probe_audio(testdata / name)
    assert probe.ok is ok
    if seconds is None:
        assert probe.duration is None
    else:
        assert probe.duration == pytest.approx(seconds, abs=0.01)


def test_pngsuite_verdicts(testdata: Path) -> None:
    """All 175 PngSuite files are refused; the 28 transparent and 14 corrupt ones say so."""
    files = sorted((testdata / "pngsuite" / "png").glob("*.png"))
    assert len(files) == 175
    transparent, corrupt = set(), set()
    for path in files:
        probe = probe_image(path)
        messages = [p.message for p in probe.problems]
        assert messages, path.name  # every file is under 360 px or unreadable
        if any(m.startswith("has transparent pixels") for m in messages):
            transparent.add(path.stem)
        if any(m.startswith(("the file is damaged", "not a readable image")) for m in messages):
            corrupt.add(path.stem)
        if path.stem[0] != "x":
            assert messages[0].endswith(
                "each side must be 360-2000 px (resize it, or run with --fix-images)"
            )
    assert transparent == PNGSUITE_TRANSPARENT
    assert corrupt == {p.stem for p in files if p.stem.startswith("x")}
    assert corrupt >= PNGSUITE_CORRUPT_OPEN


def test_corpus_images_through_check_rows(testdata: Path, tmp_path: Path) -> None:
    """A sheet naming every corpus image (absolute paths, --image-root) gets the same verdicts."""
    sheet_path = tmp_path / "sheet.csv"
    with sheet_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["prompt", "image"])
        for name in IMAGES:
            writer.writerow([f"clip of {name}", str(testdata / name)])
    rows = check_rows(read_sheet(sheet_path), JobSpec(sheet=sheet_path), image_root=testdata)
    for row, (name, expected) in zip(rows, IMAGES.items(), strict=True):
        assert (row.status is Status.PENDING) == (not expected), name
        assert len(row.issues) == len(expected), name


def test_corpus_images_outside_the_sheet_folder_are_refused(testdata: Path, tmp_path: Path) -> None:
    """Without --image-root, an absolute path to the corpus is outside the sheet's folder."""
    sheet_path = tmp_path / "sheet.csv"
    sheet_path.write_text(
        f"prompt,image\nx,{testdata / 'images' / 'flower.jpg'}\n", encoding="utf-8"
    )
    row = check_rows(read_sheet(sheet_path), JobSpec(sheet=sheet_path))[0]
    assert row.status is Status.INVALID
    assert "leads outside the sheet's folder" in row.issues[0].message
