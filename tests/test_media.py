"""Image and audio probes: both sides of every boundary, from files made in tmp_path."""

from __future__ import annotations

import io
import struct
import wave
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from batchwan.checks.media import (
    MAX_AUDIO_BYTES,
    MAX_IMAGE_BYTES,
    ImageProbe,
    probe_audio,
    probe_image,
    sniff_audio,
)


def image_file(tmp_path: Path, size: tuple[int, int], fmt: str = "PNG", mode: str = "RGB") -> Path:
    """A plain image of the given size, format and mode."""
    path = tmp_path / f"img-{size[0]}x{size[1]}-{mode}.{fmt.lower()}"
    Image.new(mode, size, 128 if mode in ("L", "P") else (90, 120, 200, 255)[: len(mode)]).save(
        path, fmt
    )
    return path


def messages(probe: ImageProbe) -> list[str]:
    """The problem messages of a probe."""
    return [p.message for p in probe.problems]


@pytest.mark.parametrize(
    ("size", "ok"),
    [
        ((359, 400), False),
        ((360, 400), True),
        ((400, 359), False),
        ((400, 360), True),
        ((2000, 400), True),
        ((2001, 400), False),
        ((400, 2000), True),
        ((400, 2001), False),
        ((2000, 2000), True),
    ],
)
def test_each_side_must_be_360_to_2000(tmp_path: Path, size: tuple[int, int], ok: bool) -> None:
    """359 and 2001 px are refused (fixably); 360 and 2000 px are accepted."""
    probe = probe_image(image_file(tmp_path, size))
    assert probe.ok is ok
    assert (probe.width, probe.height) == size
    if not ok:
        w, h = size
        assert messages(probe) == [
            f"{w}x{h} px; each side must be 360-2000 px (resize it, or run with --fix-images)"
        ]
        assert probe.problems[0].fixable


def test_sides_too_different_cannot_be_fixed(tmp_path: Path) -> None:
    """2400x300 cannot be scaled into range, so it says to crop and is not fixable."""
    probe = probe_image(image_file(tmp_path, (2400, 300)))
    assert messages(probe) == [
        "2400x300 px; each side must be 360-2000 px "
        "(crop it: the sides are too different to resize into range)"
    ]
    assert not probe.problems[0].fixable


def padded_bmp(tmp_path: Path, total: int) -> Path:
    """A valid 24-bit BMP padded with trailing zero bytes to exactly `total` bytes."""
    path = tmp_path / f"pad-{total}.bmp"
    buffer = io.BytesIO()
    Image.new("RGB", (1000, 1000), (10, 20, 30)).save(buffer, "BMP")
    data = buffer.getvalue()
    path.write_bytes(data + b"\0" * (total - len(data)))
    return path


@pytest.mark.parametrize(("total", "ok"), [(MAX_IMAGE_BYTES, True), (MAX_IMAGE_BYTES + 1, False)])
def test_at_most_10_mb(tmp_path: Path, total: int, ok: bool) -> None:
    """A file of exactly 10 MB is accepted; one byte more is refused, fixably."""
    path = padded_bmp(tmp_path, total)
    assert path.stat().st_size == total
    for probe in (probe_image(path), probe_image(path.read_bytes())):
        assert probe.ok is ok
        if not ok:
            assert messages(probe) == [
                "10.0 MB (10000001 bytes); must be at most 10 MB "
                "(compress it, or run with --fix-images)"
            ]
            assert probe.problems[0].fixable


def _rgba(alpha_low: int) -> Image.Image:
    image = Image.new("RGBA", (400, 400), (200, 100, 50, 255))
    image.putpixel((3, 3), (200, 100, 50, alpha_low))
    return image


@pytest.mark.parametrize(
    ("make", "fmt", "transparent"),
    [
        (lambda: _rgba(255), "PNG", False),
        (lambda: _rgba(254), "PNG", True),
        (lambda: _rgba(0), "WEBP", True),
        (lambda: Image.new("LA", (400, 400), (9, 255)), "PNG", False),
        (lambda: Image.new("LA", (400, 400), (9, 10)), "PNG", True),
        (lambda: Image.new("RGB", (400, 400)), "PNG", False),
    ],
)
def test_transparent_pixels_are_refused(
    tmp_path: Path, make: Callable[[], Image.Image], fmt: str, transparent: bool
) -> None:
    """Any pixel below full opacity is refused; a fully opaque alpha channel is fine."""
    path = tmp_path / f"t.{fmt.lower()}"
    image = make()
    image.save(path, fmt, lossless=True) if fmt == "WEBP" else image.save(path, fmt)
    probe = probe_image(path)
    assert probe.ok is not transparent
    if transparent:
        assert messages(probe) == [
            "has transparent pixels, which the API refuses "
            "(flatten it onto a background, or run with --fix-images)"
        ]


def test_trns_chunk_counts_as_transparency(tmp_path: Path) -> None:
    """A palette PNG with a tRNS chunk is refused even though it has no alpha channel."""
    path = tmp_path / "p.png"
    Image.new("P", (400, 400), 3).save(path, transparency=3)
    assert any("transparent" in m for m in messages(probe_image(path)))


@pytest.mark.parametrize("fmt", ["GIF", "TIFF"])
def test_formats_the_api_does_not_take_are_fixable(tmp_path: Path, fmt: str) -> None:
    """GIF and TIFF are read from content and refused as fixable."""
    path = image_file(tmp_path, (640, 360), fmt)
    renamed = path.rename(path.with_suffix(".png"))  # the name must not matter
    probe = probe_image(renamed)
    assert probe.format == fmt
    assert messages(probe) == [
        f"{fmt} image; the API takes JPEG, PNG, BMP or WEBP (convert it, or run with --fix-images)"
    ]
    assert probe.problems[0].fixable


def test_real_format_comes_from_content(tmp_path: Path) -> None:
    """A JPEG named .png is a JPEG."""
    path = image_file(tmp_path, (640, 360), "JPEG")
    probe = probe_image(path.rename(tmp_path / "liar.png"))
    assert (probe.format, probe.ok, probe.mime_subtype) == ("JPEG", True, "jpeg")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_images_are_refused(tmp_path: Path, fmt: str) -> None:
    """A file cut short opens but fails to decode: refused, not fixable."""
    buffer = io.BytesIO()
    Image.effect_noise((640, 480), 60).convert("RGB").save(buffer, fmt)
    data = buffer.getvalue()[:-2000]
    probe = probe_image(data)
    assert len(probe.problems) == 1
    assert probe.problems[0].message.startswith("the file is damaged or cut short (")
    assert not probe.problems[0].fixable


@pytest.mark.parametrize(
    "data",
    [b"", b"hello world", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 640 480\n"],
)
def test_unreadable_content_is_refused(data: bytes) -> None:
    """Empty, non-image and EPS content are refused as unreadable, never decoded."""
    probe = probe_image(data)
    assert messages(probe) == [
        "not a readable image (JPEG, PNG, BMP or WEBP expected); export it again"
    ]


def bmp_header(width: int, height: int) -> bytes:
    """A BMP header that claims width x height 24-bit pixels, with no pixel data."""
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(info), 0, 0, 14 + len(info)) + info


@pytest.mark.parametrize(("width", "height"), [(100_000, 100_000), (10_000, 10_000)])
def test_decompression_bombs_are_refused_from_the_header(width: int, height: int) -> None:
    """A header claiming too many pixels is refused without decoding, above or near the limit."""
    probe = probe_image(bmp_header(width, height))
    assert len(probe.problems) == 1
    assert probe.problems[0].message.startswith("claims over ")
    assert not probe.problems[0].fixable


def wav_bytes(seconds: float, rate: int = 8000) -> bytes:
    """A silent 8-bit mono WAV of the given length."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(rate)
        out.writeframes(b"\x80" * round(seconds * rate))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("seconds", "ok"), [(2.99, False), (3.0, True), (30.0, True), (30.01, False), (0, False)]
)
def test_audio_must_last_3_to_30_seconds(tmp_path: Path, seconds: float, ok: bool) -> None:
    """WAV of 3.0 and 30.0 s pass; 2.99 and 30.01 s do not."""
    path = tmp_path / "a.wav"
    path.write_bytes(wav_bytes(seconds))
    probe = probe_audio(path)
    assert probe.format == "WAV"
    assert probe.ok is ok
    if not ok:
        assert probe.problems[0].message.endswith("must be 3-30 s (trim or lengthen it)")


@pytest.mark.parametrize(("extra", "ok"), [(0, True), (1, False)])
def test_audio_at_most_15_mb(extra: int, ok: bool) -> None:
    """15 MB of audio passes; one byte more does not."""
    data = wav_bytes(10)
    data += b"\0" * (MAX_AUDIO_BYTES + extra - len(data))
    probe = probe_audio(data)
    assert probe.ok is ok
    if not ok:
        assert [p.message for p in probe.problems] == [
            "15.0 MB; must be at most 15 MB (shorten it)"
        ]


@pytest.mark.parametrize(
    ("head", "name"),
    [
        (b"RIFF\0\0\0\0WAVEfmt ", "WAV"),
        (b"ID3\x04\0\0\0\0\0\0", "MP3"),
        (b"\xff\xfb\x90\x00", "MP3"),
        (b"\0\0\0\x20ftypM4A ", "MP4/M4A"),
        (b"OggS\0\x02", "Ogg"),
        (b"fLaC\0\0", "FLAC"),
        (b"plain text", None),
    ],
)
def test_audio_format_is_read_from_content(head: bytes, name: str | None) -> None:
    """The first bytes say WAV, MP3 or what else the audio is."""
    assert sniff_audio(head) == name


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b"\0\0\0\x20ftypM4A " + b"\0" * 100,
            "MP4/M4A audio; the API takes WAV or MP3 (convert it)",
        ),
        (b"hello", "not audio the API can read; the API takes WAV or MP3 (convert it)"),
    ],
)
def test_audio_that_is_not_wav_or_mp3_is_refused(data: bytes, message: str) -> None:
    """Other formats are refused with what they are."""
    assert [p.message for p in probe_audio(data).problems] == [message]


def test_damaged_wav_is_refused() -> None:
    """A WAV header with nothing usable after it is refused cleanly."""
    probe = probe_audio(b"RIFF\x10\0\0\0WAVEjunkjunk")
    assert not probe.ok
    assert probe.problems[0].message.startswith("not a readable WAV file (")
