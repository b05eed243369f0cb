"""Turn an image the API would refuse for a fixable reason into one it takes.

Fixable: a side outside the catalog's range, more bytes than its limit, transparency, or a
format the API does not take (GIF, TIFF, ...). Not fixable: a file that does not decode, or whose
header claims so many pixels that decoding it would be a decompression bomb. The fixed copy is a
JPEG written beside the others in ``dest_dir``; the original is only ever read.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import secrets
import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageMath, ImageOps, UnidentifiedImageError

from batchwan.catalog.spec import IMAGE_LIMITS
from batchwan.errors import InputError

# Every model shares the catalog's image limits (batchwan.catalog.spec).
MIN_SIDE = IMAGE_LIMITS.min_side
MAX_SIDE = IMAGE_LIMITS.max_side
#: The API's limit in MB, read as 10**6 bytes a MB, so either reading is met.
MAX_BYTES = IMAGE_LIMITS.max_bytes
#: Headers claiming more pixels than this are refused before anything is decoded.
MAX_PIXELS = 100_000_000
#: A source file larger than this is not read into memory at all.
MAX_SOURCE_BYTES = 512 * 1024 * 1024
#: The formats the API takes as they are (MPO is a camera JPEG with extra frames appended).
API_FORMATS = frozenset(IMAGE_LIMITS.formats)
#: The formats the fixer will open. Kept short on purpose: Pillow's EPS reader runs Ghostscript,
#: and a sheet from a stranger must not be able to make us run that.
OPEN_FORMATS = ("JPEG", "PNG", "BMP", "DIB", "WEBP", "GIF", "TIFF", "PPM", "TGA")
#: JPEG qualities tried in turn until the file fits in MAX_BYTES.
QUALITIES = (90, 80, 70, 60, 50, 40, 30)
WHITE = (255, 255, 255)
# Part of the output name's hash: a change to how images are fixed must not reuse old outputs.
_FIXER_VERSION = b"batchwan-fixer-1\0"
_ORIENTATION_TAG = 0x0112
# What Pillow raises on malformed input varies by decoder; all of it means "cannot be fixed".
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    MemoryError,
    Image.DecompressionBombError,
)
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})


@dataclass(frozen=True)
class FixedImage:
    """An image the API takes, and what was done to get it."""

    path: Path
    actions: tuple[str, ...]  # e.g. ("resized 4000x3000 -> 2000x1500", "re-encoded WEBP->JPEG")


def fixed_name(source: Path, data: bytes) -> str:
    """The fixed copy's file name, fixed by the source's content: ``<stem>-<sha8>.jpg``."""
    digest = hashlib.sha256(_FIXER_VERSION + data).hexdigest()[:8]
    # The stem only helps a person find the file; keep it short and safe in any shell or URL.
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", source.stem).strip("._")[:60] or "image"
    return f"{stem}-{digest}.jpg"


def target_size(width: int, height: int) -> tuple[int, int]:
    """Scale (keeping the aspect ratio) so each side fits [MIN_SIDE, MAX_SIDE], or the long side
    fits MAX_SIDE.

    An aspect ratio beyond MAX_SIDE:MIN_SIDE cannot fit both bounds; the long side then wins and
    the short side is padded afterwards (see ``fix_image``) rather than distorted.
    """
    scale_up = MIN_SIDE / min(width, height)
    scale_down = MAX_SIDE / max(width, height)
    scale = min(max(1.0, scale_up), scale_down)
    if scale == 1.0:
        return width, height
    return (
        min(MAX_SIDE, max(1, round(width * scale))),
        min(MAX_SIDE, max(1, round(height * scale))),
    )


def encode_jpeg(
    image: Image.Image, *, max_bytes: int = MAX_BYTES, icc_profile: bytes | None = None
) -> tuple[bytes, int]:
    """Encode an RGB image as JPEG at the highest quality in QUALITIES that fits max_bytes."""
    # No EXIF is written: the orientation is already applied, and camera metadata (GPS
    # included) has no business going to a third party.
    extra = {"icc_profile": icc_profile} if icc_profile else {}
    for quality in QUALITIES:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality, optimize=True, **extra)
        if buffer.tell() <= max_bytes:
            return buffer.getvalue(), quality
    raise InputError(
        f"still more than {max_bytes:,} bytes as a JPEG of quality {QUALITIES[-1]}; "
        "shrink the image by hand"
    )


@contextlib.contextmanager
def _pillow_errors(name: str, doing: str) -> Iterator[None]:
    """Turn whatever Pillow raises on a bad file into an InputError that says what failed."""
    try:
        # Pillow warns about odd metadata; the verdict is ours to give, so the warnings are
        # recorded and dropped rather than printed below the CLI.
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            yield
    except InputError:
        raise
    except Image.DecompressionBombError as exc:
        raise InputError(
            f"{name}: the header claims an absurd size; refusing to decode it ({exc})"
        ) from exc
    except UnidentifiedImageError as exc:
        raise InputError(
            f"{name}: not an image, or not one in a format that can be converted "
            f"({', '.join(OPEN_FORMATS)}); replace the file"
        ) from exc
    except _DECODE_ERRORS as exc:
        detail = str(exc) or type(exc).__name__
        raise InputError(
            f"{name}: the file is corrupt or truncated and cannot be fixed "
            f"({doing}: {detail}); replace the file"
        ) from exc


def _read(source: Path) -> bytes:
    try:
        size = source.stat().st_size
        if size > MAX_SOURCE_BYTES:
            raise InputError(f"{source.name}: {size:,} bytes is too large to fix")
        return source.read_bytes()
    except OSError as exc:
        raise InputError(f"{source.name}: cannot read the file: {exc.strerror or exc}") from exc


def _open(data: bytes) -> Image.Image:
    # Image.open looks the named formats up in a registry that only init() fills completely.
    Image.init()
    return Image.open(io.BytesIO(data), formats=OPEN_FORMATS)


def _check_header(image: Image.Image, name: str) -> None:
    width, height = image.size
    if width < 1 or height < 1:
        raise InputError(f"{name}: the header claims an empty image ({width}x{height})")
    if width * height > MAX_PIXELS:
        raise InputError(
            f"{name}: the header claims {width}x{height} px ({width * height / 1e6:,.0f} "
            f"megapixels); refusing to decode more than {MAX_PIXELS // 1_000_000} megapixels"
        )


def _alpha_mask(image: Image.Image) -> Image.Image | None:
    """The image's alpha as an L image, or None when every pixel is fully opaque."""
    if image.mode in _SIXTEEN_BIT_MODES:
        if "transparency" not in image.info:
            return None
        key = image.info["transparency"]
        # Pillow's own conversion clips 16-bit values to 255 first, which loses the key colour.
        opaque = ImageMath.lambda_eval(lambda a: a["x"] != key, x=image.convert("I"))
        mask = opaque.point(lambda v: v * 255).convert("L")
    elif image.mode in _ALPHA_MODES or "transparency" in image.info:
        mask = image.convert("RGBA").getchannel("A")
    else:
        return None
    low, _ = mask.getextrema()
    return mask if isinstance(low, int | float) and low < 255 else None


def _to_rgb(image: Image.Image, mask: Image.Image | None) -> Image.Image:
    """The image in RGB, transparent pixels laid on white."""
    if image.mode in _SIXTEEN_BIT_MODES:
        # Scale 16-bit samples into 8 bits; a plain convert clips everything above 255 to white.
        scaled = image.convert("I") if image.mode != "F" else image
        factor = 1 / 256 if image.mode != "F" else 1.0
        rgb = scaled.point(lambda v: v * factor).convert("L").convert("RGB")
    elif mask is not None:
        rgb = image.convert("RGBA").convert("RGB")
    else:
        rgb = image.convert("RGB")
    if mask is None:
        return rgb
    flat = Image.new("RGB", rgb.size, WHITE)
    flat.paste(rgb, mask=mask)
    return flat


def _pad(image: Image.Image) -> Image.Image:
    width, height = image.size
    size = (max(width, MIN_SIDE), max(height, MIN_SIDE))
    canvas = Image.new("RGB", size, WHITE)
    canvas.paste(image, ((size[0] - width) // 2, (size[1] - height) // 2))
    return canvas


def _needs_fixing(fmt: str, size: tuple[int, int], nbytes: int, transparent: bool) -> bool:
    sides_ok = all(MIN_SIDE <= side <= MAX_SIDE for side in size)
    return fmt not in API_FORMATS or not sides_ok or nbytes > MAX_BYTES or transparent


@dataclass(frozen=True)
class _Decoded:
    image: Image.Image  # the first frame, upright, possibly decoded smaller than `size` (draft)
    fmt: str
    size: tuple[int, int]  # width and height as a viewer shows them, from the header
    mask: Image.Image | None  # alpha, when some pixel is not fully opaque
    notes: tuple[str, ...]
    icc_profile: bytes | None  # an RGB colour profile to carry over


def _decode(data: bytes, name: str) -> _Decoded:
    """Decode the first frame upright, refusing bombs before a single pixel is decoded."""
    with _pillow_errors(name, "checking"), _open(data) as probe:
        _check_header(probe, name)
        # verify() is the only check that catches a bad chunk checksum (pngsuite xcsn0g01),
        # and it leaves the image unusable, hence a second open below.
        probe.verify()
    with _pillow_errors(name, "decoding"):
        image = _open(data)
        try:
            decoded = _decode_opened(image, name)
        except BaseException:
            image.close()
            raise
    # The caller closes decoded.image; an image that was turned upright is a new one.
    if decoded.image is not image:
        image.close()
    return decoded


def _decode_opened(image: Image.Image, name: str) -> _Decoded:
    """Decode an image Pillow has opened (header read, no pixels yet)."""
    _check_header(image, name)
    notes: list[str] = []
    frames = getattr(image, "n_frames", 1)
    if frames > 1:
        image.seek(0)
        notes.append(f"kept the first of {frames} frames")
    width, height = image.size
    goal = target_size(width, height)
    if image.format in {"JPEG", "MPO"} and goal[0] < width:
        # libjpeg can decode at 1/2, 1/4 or 1/8 scale, never below the size asked for:
        # a 100 MP photo then costs a fraction of the memory and time.
        image.draft("RGB", goal)
    image.load()
    # Read after load: a PNG may keep its eXIf chunk after the pixel data.
    orientation = image.getexif().get(_ORIENTATION_TAG, 1)
    upright = ImageOps.exif_transpose(image)
    if orientation in range(2, 9):
        notes.append(f"turned upright per EXIF orientation {orientation}")
    if upright.size != image.size:
        width, height = height, width
    # A grey or CMYK profile would be wrong on the RGB copy; an RGB one keeps its colours.
    icc = image.info.get("icc_profile") if image.mode in {"RGB", "RGBA", "P", "PA"} else None
    return _Decoded(
        image=upright,
        fmt=image.format or "unknown",
        size=(width, height),
        mask=_alpha_mask(upright),
        notes=tuple(notes),
        icc_profile=icc if isinstance(icc, bytes) and icc else None,
    )


def _reshape(decoded: _Decoded, actions: list[str]) -> Image.Image:
    """Flatten, resize and pad the decoded image so the API takes it."""
    image = _to_rgb(decoded.image, decoded.mask)
    if decoded.mask is not None:
        actions.append("flattened transparency on white")
    elif decoded.image.mode in _SIXTEEN_BIT_MODES:
        actions.append(f"converted {decoded.image.mode} samples to 8-bit")
    width, height = decoded.size
    goal = target_size(width, height)
    if goal != (width, height):
        actions.append(f"resized {width}x{height} -> {goal[0]}x{goal[1]}")
    if image.size != goal:
        image = image.resize(goal, Image.Resampling.LANCZOS)
    if min(goal) < MIN_SIDE:
        image = _pad(image)
        actions.append(
            f"padded {goal[0]}x{goal[1]} -> {image.width}x{image.height} on white: an aspect "
            f"ratio of {max(goal) / min(goal):.1f}:1 cannot fit {MIN_SIDE}-{MAX_SIDE} px on "
            "both sides without distortion"
        )
    return image


def _write_once(dest: Path, encoded: bytes) -> None:
    """Write the fixed copy, unless an earlier run already did: its bytes keep the row's key."""
    if dest.is_file():
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename, so a crash never leaves a half-written file under the final name.
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        tmp.write_bytes(encoded)
        os.replace(tmp, dest)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"cannot write the fixed image {dest}: {exc.strerror or exc}") from exc


def fix_image(source: Path, dest_dir: Path) -> FixedImage:
    """Write an API-ready JPEG copy of ``source`` into ``dest_dir``; the original is untouched.

    An image the API already takes comes back as ``source`` with no actions. Otherwise the copy
    is ``<stem>-<sha8>.jpg``, named by the source's content so a rerun finds and reuses it (and
    the row's key stays the same). Raises InputError when the image cannot be fixed: unreadable,
    corrupt, truncated, or a header claiming more than 100 megapixels.
    """
    name = source.name
    data = _read(source)
    decoded = _decode(data, name)
    with decoded.image:
        if not _needs_fixing(decoded.fmt, decoded.size, len(data), decoded.mask is not None):
            return FixedImage(path=source, actions=())
        actions = list(decoded.notes)
        with _pillow_errors(name, "converting"):
            fixed = _reshape(decoded, actions)
            try:
                encoded, quality = encode_jpeg(fixed, icc_profile=decoded.icc_profile)
            except InputError as exc:
                raise InputError(f"{name}: {exc}") from exc
    if len(data) > MAX_BYTES:
        actions.append(f"shrank {len(data):,} bytes -> {len(encoded):,} bytes")
    quality_note = "" if quality == QUALITIES[0] else f", lowered from {QUALITIES[0]} to fit"
    actions.append(f"re-encoded {decoded.fmt}->JPEG (quality {quality}{quality_note})")
    dest = dest_dir / fixed_name(source, data)
    _write_once(dest, encoded)
    return FixedImage(path=dest, actions=tuple(actions))
