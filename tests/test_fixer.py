"""The image fixer: fixable images come out API-ready, broken ones are a clean InputError."""

from __future__ import annotations

import hashlib
import re
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageCms

from batchwan.checks.fixer import MAX_BYTES, encode_jpeg, fix_image, fixed_name, target_size
from batchwan.errors import InputError

UNFIXABLE_IMAGES = [
    "broken.png",
    "truncated_image.png",
    "truncated_jpeg.jpg",
    "broken_data_stream.png",
    "reallybig.bmp",
]
FIXABLE_IMAGES = ["hopper.bmp", "transparent.png", "transparent.webp", "itxt_chunks.png"]
READY_IMAGES = [
    "images/flower.jpg",
    "images/flower.webp",
    "images/xmp_test.jpg",
    "images/junk_jpeg_header.jpg",
    "images/lossless_color_transform.bmp",
    "images/lossless_color_transform.webp",
    "images/uncompressed_rgb.png",
    "wan-examples/i2v_input.JPG",
    "wan-examples/snake.png",
]


def assert_api_ready(path: Path) -> None:
    """Check, independently of the fixer, every rule the API sets for an image."""
    assert path.stat().st_size <= 10_000_000
    with Image.open(path) as image:
        assert image.format == "JPEG"
        assert image.mode == "RGB"
        assert all(360 <= side <= 2000 for side in image.size), image.size
        image.load()
    with Image.open(path) as image:
        image.verify()


def digest(path: Path) -> str:
    """The file's content hash, to show it was not touched."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def png_header(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims this size over a few bytes of pixels: a decompression bomb."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 1024))
        + chunk(b"IEND", b"")
    )


# --- the corpora ------------------------------------------------------------------------


@pytest.mark.corpus
def test_every_decodable_pngsuite_file_is_fixed(testdata: Path, tmp_path: Path) -> None:
    """All 161 pngsuite files that open and decode come out API-ready, originals untouched."""
    sources = sorted(p for p in (testdata / "pngsuite" / "png").glob("*.png") if p.name[0] != "x")
    assert len(sources) == 161
    for source in sources:
        before = digest(source)
        fixed = fix_image(source, tmp_path)
        assert fixed.path.parent == tmp_path, source.name
        assert_api_ready(fixed.path)
        assert digest(source) == before


@pytest.mark.corpus
def test_every_corrupt_pngsuite_file_is_an_input_error(testdata: Path, tmp_path: Path) -> None:
    """All 14 corrupt pngsuite files (x*) raise InputError, xcsn0g01 and xdtn0g01 included."""
    sources = sorted((testdata / "pngsuite" / "png").glob("x*.png"))
    assert len(sources) == 14
    for source in sources:
        with pytest.raises(InputError, match=re.escape(source.name)):
            fix_image(source, tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.corpus
@pytest.mark.parametrize("name", FIXABLE_IMAGES)
def test_fixable_corpus_image_becomes_api_ready(testdata: Path, tmp_path: Path, name: str) -> None:
    """Too small, too large and transparent images come out API-ready; the original is intact."""
    source = testdata / "images" / name
    before = digest(source)
    fixed = fix_image(source, tmp_path)
    assert_api_ready(fixed.path)
    assert digest(source) == before
    assert any(action.startswith("resized") for action in fixed.actions)


@pytest.mark.corpus
@pytest.mark.parametrize(
    ("name", "size", "flattened"),
    [
        ("itxt_chunks.png", (2000, 1667), False),
        ("hopper.bmp", (360, 360), False),
        ("transparent.png", (480, 360), True),
        ("transparent.webp", (480, 360), True),
    ],
)
def test_fixed_size_keeps_the_aspect_ratio(
    testdata: Path, tmp_path: Path, name: str, size: tuple[int, int], flattened: bool
) -> None:
    """The fixed copy keeps the aspect ratio, and says when it flattened transparency."""
    fixed = fix_image(testdata / "images" / name, tmp_path)
    with Image.open(fixed.path) as image:
        assert image.size == size
    assert ("flattened transparency on white" in fixed.actions) is flattened


@pytest.mark.corpus
@pytest.mark.parametrize("name", UNFIXABLE_IMAGES)
def test_unfixable_corpus_image_is_an_input_error(
    testdata: Path, tmp_path: Path, name: str
) -> None:
    """Corrupt, truncated and unreadable images raise InputError and write nothing."""
    source = testdata / "images" / name
    before = digest(source)
    with pytest.raises(InputError, match=re.escape(name)):
        fix_image(source, tmp_path)
    assert list(tmp_path.iterdir()) == []
    assert digest(source) == before


@pytest.mark.corpus
def test_decompression_bomb_is_refused_by_its_header(testdata: Path, tmp_path: Path) -> None:
    """reallybig.bmp (3000000x2000000) is refused as an absurd size, not as a decode failure."""
    with pytest.raises(InputError, match="absurd size; refusing to decode"):
        fix_image(testdata / "images" / "reallybig.bmp", tmp_path)


@pytest.mark.corpus
@pytest.mark.parametrize("name", READY_IMAGES)
def test_api_ready_image_is_returned_as_it_is(testdata: Path, tmp_path: Path, name: str) -> None:
    """An image the API already takes comes back unchanged, with no copy and no actions."""
    source = testdata / name
    fixed = fix_image(source, tmp_path)
    assert (fixed.path, fixed.actions) == (source, ())
    assert list(tmp_path.iterdir()) == []


# --- generated images -------------------------------------------------------------------


def test_portrait_exif_photo_stays_portrait(tmp_path: Path) -> None:
    """A 4000x3000 JPEG whose EXIF says "turn 90 degrees" comes out 1500x2000, upright."""
    image = Image.new("RGB", (4000, 3000), (200, 10, 10))
    image.paste((10, 10, 200), (0, 0, 2000, 3000))  # the stored left half: the upright top
    exif = Image.Exif()
    exif[0x0112] = 6
    source = tmp_path / "portrait.jpg"
    image.save(source, exif=exif, quality=95)
    before = digest(source)
    fixed = fix_image(source, tmp_path / "fixed")
    assert_api_ready(fixed.path)
    with Image.open(fixed.path) as out:
        assert out.size == (1500, 2000)
        red, _, blue = out.getpixel((750, 100))  # type: ignore[misc]  # Pillow types a pixel as float | tuple
        assert blue > 150 > red
        assert 0x0112 not in out.getexif()  # else a viewer would turn it a second time
    assert fixed.actions == (
        "turned upright per EXIF orientation 6",
        "resized 3000x4000 -> 1500x2000",
        "re-encoded JPEG->JPEG (quality 90)",
    )
    assert digest(source) == before


def test_image_over_ten_megabytes_is_shrunk(tmp_path: Path) -> None:
    """A 10.8 MB BMP with good sides becomes a JPEG under 10 MB of the same size."""
    source = tmp_path / "noise.bmp"
    Image.effect_noise((1900, 1900), 80).convert("RGB").save(source)
    assert source.stat().st_size > MAX_BYTES
    fixed = fix_image(source, tmp_path / "fixed")
    assert_api_ready(fixed.path)
    with Image.open(fixed.path) as out:
        assert out.size == (1900, 1900)
    assert fixed.actions[0].startswith("shrank 10,830,054 bytes -> ")


@pytest.mark.parametrize(
    ("name", "mode", "size", "expected_size", "action"),
    [
        ("photo.gif", "RGB", (640, 480), (640, 480), "re-encoded GIF->JPEG (quality 90)"),
        ("scan.tiff", "RGB", (2400, 1800), (2000, 1500), "re-encoded TIFF->JPEG (quality 90)"),
        ("scan.tif", "CMYK", (500, 400), (500, 400), "re-encoded TIFF->JPEG (quality 90)"),
        ("gray16.tiff", "I;16", (500, 400), (500, 400), "converted I;16 samples to 8-bit"),
        ("pic.ppm", "RGB", (100, 50), (720, 360), "resized 100x50 -> 720x360"),
    ],
)
def test_formats_the_api_does_not_take_are_converted(
    tmp_path: Path,
    name: str,
    mode: str,
    size: tuple[int, int],
    expected_size: tuple[int, int],
    action: str,
) -> None:
    """GIF, TIFF (RGB, CMYK, 16-bit) and PPM come out as API-ready JPEGs."""
    source = tmp_path / name
    Image.new(mode, size).save(source)
    fixed = fix_image(source, tmp_path / "fixed")
    assert_api_ready(fixed.path)
    with Image.open(fixed.path) as out:
        assert out.size == expected_size
    assert action in fixed.actions


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path: Path) -> None:
    """A 16-bit grey of 30000/65535 becomes a mid grey, not white."""
    source = tmp_path / "gray16.tiff"
    Image.new("I;16", (400, 400), 30000).save(source)
    fixed = fix_image(source, tmp_path / "fixed")
    with Image.open(fixed.path) as out:
        red, green, blue = out.getpixel((200, 200))  # type: ignore[misc]  # Pillow types a pixel as float | tuple
    assert 100 < red < 135
    assert red == green == blue


def test_animated_gif_keeps_its_first_frame(tmp_path: Path) -> None:
    """An animated GIF becomes its first frame, and the actions say so."""
    frames = [Image.new("RGB", (400, 400), colour) for colour in ("red", "lime", "blue")]
    source = tmp_path / "anim.gif"
    frames[0].save(source, save_all=True, append_images=frames[1:])
    fixed = fix_image(source, tmp_path / "fixed")
    assert "kept the first of 3 frames" in fixed.actions
    with Image.open(fixed.path) as out:
        red, green, _ = out.getpixel((200, 200))  # type: ignore[misc]  # Pillow types a pixel as float | tuple
    assert red > 200 > green


def test_transparent_pixels_are_laid_on_white(tmp_path: Path) -> None:
    """Fully transparent pixels come out white, opaque ones keep their colour."""
    image = Image.new("RGBA", (400, 400), (0, 0, 0, 0))
    image.paste((0, 0, 0, 255), (200, 0, 400, 400))
    source = tmp_path / "half.png"
    image.save(source)
    fixed = fix_image(source, tmp_path / "fixed")
    assert fixed.actions == ("flattened transparency on white", "re-encoded PNG->JPEG (quality 90)")
    with Image.open(fixed.path) as out:
        assert min(out.getpixel((50, 200))) > 245  # type: ignore[arg-type]  # Pillow types a pixel as float | tuple
        assert max(out.getpixel((350, 200))) < 10  # type: ignore[arg-type]  # Pillow types a pixel as float | tuple


@pytest.mark.parametrize(
    ("size", "expected", "resized_to"),
    [((5000, 100), (2000, 360), (2000, 40)), ((50, 1000), (360, 2000), (100, 2000))],
)
def test_extreme_aspect_ratio_is_padded_not_distorted(
    tmp_path: Path, size: tuple[int, int], expected: tuple[int, int], resized_to: tuple[int, int]
) -> None:
    """An aspect ratio no size can satisfy is fitted on its long side and padded on white."""
    source = tmp_path / "strip.png"
    Image.new("RGB", size, "red").save(source)
    fixed = fix_image(source, tmp_path / "fixed")
    assert_api_ready(fixed.path)
    with Image.open(fixed.path) as out:
        assert out.size == expected
        assert min(out.getpixel((0, 0))) > 245  # type: ignore[arg-type]  # the white padding; Pillow types a pixel as float | tuple
        middle = out.getpixel((expected[0] // 2, expected[1] // 2))
        assert middle[0] > 200 > middle[1]  # type: ignore[index]  # the picture itself; Pillow types a pixel as float | tuple
    padded = [action for action in fixed.actions if action.startswith("padded")]
    assert padded
    assert padded[0].startswith(f"padded {resized_to[0]}x{resized_to[1]} -> ")
    assert "without distortion" in padded[0]


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((4000, 3000), (2000, 1500)),
        ((3000, 4000), (1500, 2000)),
        ((100, 100), (360, 360)),
        ((200, 150), (480, 360)),
        ((2400, 2000), (2000, 1667)),
        ((360, 2000), (360, 2000)),
        ((1024, 768), (1024, 768)),
        ((300, 1900), (316, 2000)),
        ((5000, 100), (2000, 40)),
        ((1, 1), (360, 360)),
    ],
)
def test_target_size(size: tuple[int, int], expected: tuple[int, int]) -> None:
    """Sides are scaled together into [360, 2000]; when impossible the long side wins."""
    assert target_size(*size) == expected


def test_rerun_reuses_the_fixed_copy(tmp_path: Path) -> None:
    """Fixing the same content twice gives the same path, and an existing copy is kept as is."""
    source = tmp_path / "small.png"
    Image.new("RGB", (100, 80), "teal").save(source)
    first = fix_image(source, tmp_path / "fixed")
    assert re.fullmatch(r"small-[0-9a-f]{8}\.jpg", first.path.name)
    # A copy written by an older Pillow may differ byte for byte; its bytes fix the row's key.
    first.path.write_bytes(first.path.read_bytes() + b"\0")
    kept = first.path.read_bytes()
    second = fix_image(source, tmp_path / "fixed")
    assert second == first
    assert second.path.read_bytes() == kept
    assert [p.name for p in (tmp_path / "fixed").iterdir()] == [first.path.name]


def test_name_follows_the_content_not_the_time(tmp_path: Path) -> None:
    """Two files with the same bytes share a hash; different bytes get a different name."""
    one, two, other = tmp_path / "a b.png", tmp_path / "a b.copy.png", tmp_path / "c.png"
    Image.new("RGB", (10, 10), "red").save(one)
    two.write_bytes(one.read_bytes())
    Image.new("RGB", (10, 10), "blue").save(other)
    assert fixed_name(one, one.read_bytes())[-12:] == fixed_name(two, two.read_bytes())[-12:]
    assert fixed_name(one, one.read_bytes())[-12:] != fixed_name(other, other.read_bytes())[-12:]
    assert fixed_name(one, one.read_bytes()).startswith("a_b-")


@pytest.mark.parametrize(
    ("width", "height", "message"),
    [
        (11_000, 10_000, r"11000x10000 px \(110 megapixels\); refusing to decode"),
        (40_000, 40_000, r"absurd size; refusing to decode"),
    ],
)
def test_bomb_headers_are_refused_before_decoding(
    tmp_path: Path, width: int, height: int, message: str
) -> None:
    """A header claiming over 100 megapixels is refused with a clear message, never decoded."""
    source = tmp_path / "bomb.png"
    source.write_bytes(png_header(width, height))
    with pytest.raises(InputError, match=message):
        fix_image(source, tmp_path / "fixed")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"prompt,image\n", "not an image"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 400 400\n", "not an image"),
        (b"", "not an image"),
    ],
)
def test_non_images_are_input_errors(tmp_path: Path, content: bytes, message: str) -> None:
    """A text file, an EPS (never handed to Ghostscript) or an empty file is an InputError."""
    source = tmp_path / "thing.png"
    source.write_bytes(content)
    with pytest.raises(InputError, match=message):
        fix_image(source, tmp_path / "fixed")


@pytest.mark.parametrize("name", ["missing.png", "."])
def test_unreadable_source_is_an_input_error(tmp_path: Path, name: str) -> None:
    """A missing file or a folder is an InputError saying it cannot be read."""
    with pytest.raises(InputError, match="cannot read the file"):
        fix_image(tmp_path / name, tmp_path / "fixed")


def test_quality_is_lowered_until_it_fits() -> None:
    """When quality 90 is too big, a lower quality that fits is used."""
    image = Image.effect_noise((600, 600), 80).convert("RGB")
    size_at_90 = len(encode_jpeg(image)[0])
    encoded, quality = encode_jpeg(image, max_bytes=size_at_90 - 1)
    assert quality < 90
    assert len(encoded) < size_at_90


def test_quality_floor_is_an_input_error() -> None:
    """When even the lowest quality does not fit, the image is an InputError."""
    image = Image.effect_noise((600, 600), 80).convert("RGB")
    with pytest.raises(InputError, match="still more than 1,000 bytes"):
        encode_jpeg(image, max_bytes=1000)


def test_rgb_colour_profile_is_kept_and_exif_dropped(tmp_path: Path) -> None:
    """The copy keeps an RGB colour profile, and carries no EXIF (no GPS leaves the machine)."""
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"
    source = tmp_path / "profiled.png"
    Image.new("RGB", (100, 100), "navy").save(source, icc_profile=profile, exif=exif)
    fixed = fix_image(source, tmp_path / "fixed")
    with Image.open(fixed.path) as out:
        assert out.info.get("icc_profile") == profile
        assert dict(out.getexif()) == {}
