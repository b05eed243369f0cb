"""The simulator's check of a create body, as the service checks wan2.5-i2v-preview requests.

Independent of ``batchwan.checks.validation`` on purpose: the simulator plays the provider, so a
bug in our own validation shows up as the provider's 400 instead of being hidden by the same bug
twice.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings
from typing import Any
from urllib.parse import urlsplit

from PIL import Image, UnidentifiedImageError

MAX_PROMPT = 2000
MAX_NEGATIVE_PROMPT = 500
MAX_IMAGE_BYTES = 10 * 1024 * 1024
MIN_SIDE, MAX_SIDE = 360, 2000
RESOLUTIONS = ("480P", "720P", "1080P")
DURATIONS = (5, 10)
MAX_SEED = 2147483647
_BOOLEANS = ("audio", "prompt_extend", "safety_filter")
_IMAGE_FORMATS = frozenset({"JPEG", "PNG", "BMP", "WEBP"})
_DATA_URI = re.compile(r"^data:image/([a-z0-9.+-]+);base64,(.*)$", re.IGNORECASE | re.DOTALL)


def check_create_body(body: Any) -> str | None:
    """The first reason the service would refuse this body, or None when it is acceptable."""
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    for check in (_check_prompt, _check_image, _check_options):
        reason = check(body)
        if reason:
            return reason
    return None


def _check_prompt(body: dict[str, Any]) -> str | None:
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return "prompt: field required (a non-empty string)"
    if len(prompt) > MAX_PROMPT:
        return f"prompt: {len(prompt)} characters is over the limit of {MAX_PROMPT}"
    negative = body.get("negative_prompt")
    if negative is not None:
        if not isinstance(negative, str):
            return "negative_prompt: must be a string"
        if len(negative) > MAX_NEGATIVE_PROMPT:
            return (
                f"negative_prompt: {len(negative)} characters is over the limit of "
                f"{MAX_NEGATIVE_PROMPT}"
            )
    return None


def _check_options(body: dict[str, Any]) -> str | None:
    for name in _BOOLEANS:
        if name in body and not isinstance(body[name], bool):
            return f"{name}: must be a JSON boolean (true or false), got {body[name]!r}"
    audio_url = body.get("audio_url")
    if audio_url is not None and not _is_http_url(audio_url):
        return "audio_url: must be an http(s) URL"
    resolution = body.get("resolution")
    if resolution is not None and resolution not in RESOLUTIONS:
        return f"resolution: must be one of {', '.join(RESOLUTIONS)}, got {resolution!r}"
    duration = body.get("duration")
    if duration is not None and (_not_int(duration) or duration not in DURATIONS):
        return f"duration: must be 5 or 10, got {duration!r}"
    seed = body.get("seed")
    if seed is not None and (_not_int(seed) or not 0 <= seed <= MAX_SEED):
        return f"seed: must be an integer from 0 to {MAX_SEED}, got {seed!r}"
    return None


def _check_image(body: dict[str, Any]) -> str | None:
    image = body.get("image")
    if not isinstance(image, str) or not image.strip():
        return "image: field required (an http(s) URL or base64 data)"
    if _is_http_url(image):
        return None
    match = _DATA_URI.match(image.strip())
    if not match:
        return "image: must be an http(s) URL or data:image/...;base64,... data"
    try:
        raw = base64.b64decode(match.group(2), validate=True)
    except (binascii.Error, ValueError):
        return "image: the base64 data cannot be decoded"
    if len(raw) > MAX_IMAGE_BYTES:
        return f"image: {len(raw) / 1e6:.1f} MB is over the limit of 10 MB"
    return _check_image_bytes(raw)


def _check_image_bytes(raw: bytes) -> str | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw)) as img:
                kind, (width, height) = img.format, img.size
                transparent = kind == "PNG" and _has_transparency(img)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError):
        return "image: the data is not a readable image"
    if kind not in _IMAGE_FORMATS:
        return f"image: format {kind} is not accepted (use JPEG, PNG, BMP or WEBP)"
    for side, size in (("width", width), ("height", height)):
        if size < MIN_SIDE:
            return f"image: {side} {size} px is below {MIN_SIDE}"
        if size > MAX_SIDE:
            return f"image: {side} {size} px is above {MAX_SIDE}"
    if transparent:
        return "image: PNG with transparency is not accepted"
    return None


def _has_transparency(img: Image.Image) -> bool:
    if "transparency" in img.info:
        return True
    if img.mode not in ("RGBA", "LA", "PA"):
        return False
    low = img.getchannel("A").getextrema()[0]
    if isinstance(low, tuple):  # multi-band extrema; one band gives (min, max) directly
        low = low[0]
    return bool(low < 255)


def _is_http_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value.strip())
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _not_int(value: Any) -> bool:
    return isinstance(value, bool) or not isinstance(value, int)
