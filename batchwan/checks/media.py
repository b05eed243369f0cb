"""Probe images and audio against the API's rules, decoding no more than each rule needs.

Images: the header gives the format and size, so a decompression bomb is refused before a pixel
is decoded. Only an image whose header passes a sanity bound is decoded, twice on fresh opens:
``verify()`` catches bad PNG checksums that ``load()`` lets through, and ``load()`` catches
truncation; the decoded pixels then show whether any is transparent. Truncated images are never
tolerated (``LOAD_TRUNCATED_IMAGES`` stays off).

Audio: the format is read from the content (a ``.mp3`` that is really an MP4 is refused), and the
duration from mutagen.

Limits come from the catalog (``batchwan.catalog.spec``): every model shares one set for images
and one for audio. Sizes in MB are read as 10**6 bytes, the smaller of the two readings, so a
file that passes here passes whichever one the provider means. Identification is
limited to Pillow's plain raster formats: its EPS reader would run Ghostscript on a stranger's
file.
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from batchwan.catalog.spec import AUDIO_LIMITS, IMAGE_LIMITS, MB, AudioLimits, ImageLimits

log = logging.getLogger(__name__)

MAX_IMAGE_BYTES = IMAGE_LIMITS.max_bytes
MIN_SIDE, MAX_SIDE = IMAGE_LIMITS.min_side, IMAGE_LIMITS.max_side
# The data: URI subtype of each Pillow format the API may take.
_SUBTYPES = {"JPEG": "jpeg", "MPO": "jpeg", "PNG": "png", "BMP": "bmp", "WEBP": "webp"}
IMAGE_FORMATS: dict[str, str] = {
    fmt: _SUBTYPES.get(fmt, fmt.lower()) for fmt in IMAGE_LIMITS.formats
}
MAX_AUDIO_BYTES = AUDIO_LIMITS.max_bytes
MIN_AUDIO_SECONDS, MAX_AUDIO_SECONDS = AUDIO_LIMITS.min_seconds, AUDIO_LIMITS.max_seconds

# Far above anything the API takes, far below what would exhaust memory: larger images are
# refused on their header alone, without decoding.
_DECODE_LIMIT_PIXELS = 40_000_000
# The formats Pillow may identify: the API's own, and those --fix-images can convert (a
# camera JPEG that Pillow calls MPO is opened by the JPEG reader).
_OPEN_FORMATS = ("JPEG", "PNG", "BMP", "DIB", "WEBP", "GIF", "TIFF", "PPM", "TGA")
_FIX = "or run with --fix-images"


@dataclass(frozen=True)
class MediaProblem:
    """One way a media file breaks the API's rules; ``fixable`` if --fix-images can mend it."""

    message: str
    fixable: bool = False


@dataclass(frozen=True)
class ImageProbe:
    """What an image is, as far as the API cares, and what is wrong with it."""

    format: str | None  # Pillow's name (JPEG, PNG, ...); None when unreadable
    width: int | None
    height: int | None
    size: int  # bytes
    problems: tuple[MediaProblem, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the API would take the image as it is."""
        return not self.problems

    @property
    def mime_subtype(self) -> str | None:
        """The subtype for a ``data:image/<subtype>`` URI, None when the API does not take it."""
        return IMAGE_FORMATS.get(self.format or "")


@dataclass(frozen=True)
class AudioProbe:
    """What an audio file is, as far as the API cares, and what is wrong with it."""

    format: str | None  # "WAV" or "MP3"; None when it is neither
    duration: float | None  # seconds
    size: int
    problems: tuple[MediaProblem, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the API would take the audio as it is."""
        return not self.problems


def megabytes(size: int) -> str:
    """A byte count as a person reads it: ``10.5 MB``."""
    return f"{size / MB:.1f} MB"


def _open(source: Path | bytes) -> Image.Image:
    return Image.open(
        io.BytesIO(source) if isinstance(source, bytes) else source, formats=_OPEN_FORMATS
    )


def _header(source: Path | bytes) -> tuple[str | None, int, int]:
    """Format and size from the header alone; raises what Pillow raises."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's chatter about odd metadata is not a verdict
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with _open(source) as image:
            return image.format, image.width, image.height


def _decode(source: Path | bytes) -> bool:
    """Fully decode on fresh opens; True when some pixel is transparent. Raises when damaged."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with _open(source) as image:
            image.verify()
        with _open(source) as image:
            image.load()
            return has_transparency(image)


def has_transparency(image: Image.Image) -> bool:
    """True when a decoded image has a pixel that is not fully opaque (a tRNS chunk counts)."""
    if "transparency" in image.info:
        return True
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        low, _high = image.getchannel("A").getextrema()
        # Pillow types an extremum as float | tuple; one band's is always a number.
        return bool(low < 255)  # type: ignore[operator]
    return False


def _side_problem(width: int, height: int, limits: ImageLimits) -> MediaProblem | None:
    low, high = limits.min_side, limits.max_side
    if low <= width <= high and low <= height <= high:
        return None
    rule = f"{width}x{height} px; each side must be {low}-{high} px"
    # One scale factor can bring both sides into range only when their ratio allows it.
    if min(width, height) > 0 and max(width, height) / min(width, height) <= high / low:
        return MediaProblem(f"{rule} (resize it, {_FIX})", fixable=True)
    return MediaProblem(f"{rule} (crop it: the sides are too different to resize into range)")


def probe_image(source: Path | bytes, limits: ImageLimits = IMAGE_LIMITS) -> ImageProbe:
    """Check a local image file, or an image's bytes, against every image rule of the API."""
    size = len(source) if isinstance(source, bytes) else source.stat().st_size
    problems: list[MediaProblem] = []
    if size > limits.max_bytes:
        most = limits.describe_bytes()
        problems.append(
            MediaProblem(
                f"{megabytes(size)} ({size} bytes); must be at most {most} (compress it, {_FIX})",
                fixable=True,
            )
        )
    try:
        fmt, width, height = _header(source)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        problems.append(
            MediaProblem(
                f"claims over {Image.MAX_IMAGE_PIXELS} pixels; each side must be "
                f"{limits.min_side}-{limits.max_side} px (export a smaller image)"
            )
        )
        return ImageProbe(None, None, None, size, tuple(problems))
    except Exception:  # Pillow raises many unrelated types on files it cannot identify
        problems.append(
            MediaProblem("not a readable image (JPEG, PNG, BMP or WEBP expected); export it again")
        )
        return ImageProbe(None, None, None, size, tuple(problems))
    if fmt not in limits.formats:
        problems.append(
            MediaProblem(
                f"{fmt or 'unknown'} image; the API takes JPEG, PNG, BMP or WEBP "
                f"(convert it, {_FIX})",
                fixable=True,
            )
        )
    side = _side_problem(width, height, limits)
    if side:
        problems.append(side)
    if width * height <= _DECODE_LIMIT_PIXELS:
        problems.extend(_decode_problems(source))
    return ImageProbe(fmt, width, height, size, tuple(problems))


def _decode_problems(source: Path | bytes) -> list[MediaProblem]:
    try:
        transparent = _decode(source)
    except Exception as exc:  # a damaged file fails in whichever decoder step meets the damage
        reason = str(exc).strip() or type(exc).__name__
        return [MediaProblem(f"the file is damaged or cut short ({reason}); export it again")]
    if transparent:
        return [
            MediaProblem(
                "has transparent pixels, which the API refuses "
                f"(flatten it onto a background, {_FIX})",
                fixable=True,
            )
        ]
    return []


def sniff_audio(data: bytes) -> str | None:
    """``WAV`` or ``MP3`` from the first bytes, else a name for what it is (or None)."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "WAV"
    # An MPEG-1/2 layer III frame header: 11 sync bits, then layer bits 01.
    if data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE6 == 0xE2):
        return "MP3"
    if data[4:8] == b"ftyp":
        return "MP4/M4A"
    for magic, name in ((b"OggS", "Ogg"), (b"fLaC", "FLAC"), (b"FORM", "AIFF")):
        if data.startswith(magic):
            return name
    return None


def _duration(data: bytes, fmt: str) -> float:
    # mutagen is imported here: only audio rows need it.
    from mutagen.mp3 import MP3
    from mutagen.wave import WAVE

    kind = WAVE if fmt == "WAV" else MP3
    info = kind(io.BytesIO(data)).info
    return float(getattr(info, "length", 0.0))


def probe_audio(source: Path | bytes, limits: AudioLimits = AUDIO_LIMITS) -> AudioProbe:
    """Check audio (a file or its bytes) by content: format, length in seconds, size."""
    if isinstance(source, bytes):
        data, size = source, len(source)
    else:
        size = source.stat().st_size
        with source.open("rb") as handle:
            data = handle.read(limits.max_bytes + 1)
    problems: list[MediaProblem] = []
    if size > limits.max_bytes:
        most = limits.describe_bytes()
        problems.append(MediaProblem(f"{megabytes(size)}; must be at most {most} (shorten it)"))
    fmt = sniff_audio(data)
    if fmt not in limits.formats:
        what = f"{fmt} audio" if fmt else "not audio the API can read"
        problems.append(MediaProblem(f"{what}; the API takes WAV or MP3 (convert it)"))
        return AudioProbe(None, None, size, tuple(problems))
    try:
        duration = _duration(data, fmt)
    except Exception as exc:  # mutagen raises its own and stdlib types on damaged files
        problems.append(MediaProblem(f"not a readable {fmt} file ({exc}); export it again"))
        return AudioProbe(fmt, None, size, tuple(problems))
    if not limits.min_seconds <= duration <= limits.max_seconds:
        span = f"{limits.min_seconds:g}-{limits.max_seconds:g} s"
        problems.append(
            MediaProblem(f"{duration:.1f} s long; must be {span} (trim or lengthen it)")
        )
    return AudioProbe(fmt, duration, size, tuple(problems))
