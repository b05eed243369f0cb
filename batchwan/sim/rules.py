"""The simulator's check of a create body, as the service checks each model's requests.

Independent of ``batchwan.checks.validation`` on purpose: the simulator plays the provider, so a
bug in our own validation shows up as the provider's 400 instead of being hidden by the same bug
twice. Only the numbers (limits, choices) come from the model's ``ModelSpec``. A field the model
does not take is refused, so a body that carries one (an image to a text model, a `resolution`
instead of `size`) shows up here. `multi_shots`, the older name of `shot_type` in one public
client, is taken where `shot_type` is.
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

from batchwan.catalog.registry import DEFAULT_MODEL, REGISTRY
from batchwan.catalog.spec import SHOT_TYPES, Frame, ImageLimits, ModelSpec

_BOOLEANS = ("audio", "prompt_extend", "safety_filter")
_DATA_URI = re.compile(r"^data:image/([a-z0-9.+-]+);base64,(.*)$", re.IGNORECASE | re.DOTALL)
_ALIASES = {"multi_shots": "shot_type"}


def _choices(values: tuple[object, ...]) -> str:
    texts = [str(v) for v in values]
    return texts[0] if len(texts) == 1 else f"{', '.join(texts[:-1])} or {texts[-1]}"


def check_create_body(body: Any, spec: ModelSpec | None = None) -> str | None:
    """The first reason the service would refuse this body for ``spec``'s model (default: the
    default model), or None when it is acceptable."""
    model = spec if spec is not None else REGISTRY[DEFAULT_MODEL]
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    for check in (_check_fields, _check_prompt, _check_frames, _check_options, _check_output):
        reason = check(body, model)
        if reason:
            return reason
    return None


def _check_fields(body: dict[str, Any], spec: ModelSpec) -> str | None:
    for name in body:
        taken = _ALIASES.get(name, name)
        if taken not in spec.fields:
            return f"{name}: {spec.name} does not take this field"
    return None


def _check_prompt(body: dict[str, Any], spec: ModelSpec) -> str | None:
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return "prompt: field required (a non-empty string)"
    if len(prompt) > spec.prompt_max:
        return f"prompt: {len(prompt)} characters is over the limit of {spec.prompt_max}"
    negative = body.get("negative_prompt")
    if negative is not None:
        if not isinstance(negative, str):
            return "negative_prompt: must be a string"
        if len(negative) > spec.negative_prompt_max:
            return (
                f"negative_prompt: {len(negative)} characters is over the limit of "
                f"{spec.negative_prompt_max}"
            )
    return None


def _check_options(body: dict[str, Any], spec: ModelSpec) -> str | None:
    for name in _BOOLEANS:
        if name in body and not isinstance(body[name], bool):
            return f"{name}: must be a JSON boolean (true or false), got {body[name]!r}"
    audio_url = body.get("audio_url")
    if audio_url is not None and not _is_http_url(audio_url):
        return "audio_url: must be an http(s) URL"
    seed = body.get("seed")
    if seed is not None and (_not_int(seed) or not 0 <= seed <= spec.seed_max):
        return f"seed: must be an integer from 0 to {spec.seed_max}, got {seed!r}"
    template = body.get("template")
    if template is not None and (not isinstance(template, str) or not template.strip()):
        return "template: must be a template name"
    for name in ("shot_type", "multi_shots"):
        shot = body.get(name)
        if shot is not None and shot not in SHOT_TYPES:
            return f"{name}: must be one of {', '.join(SHOT_TYPES)}, got {shot!r}"
        if shot == "multi" and body.get("prompt_extend") is False:
            return f"{name}: multi needs prompt_extend"
    return None


def _check_output(body: dict[str, Any], spec: ModelSpec) -> str | None:
    resolution = body.get("resolution")
    if resolution is not None and resolution not in spec.resolutions:
        return f"resolution: must be one of {', '.join(spec.resolutions)}, got {resolution!r}"
    size = body.get("size")
    if size is not None and size not in spec.sizes:
        return f"size: must be one of {', '.join(spec.sizes)}, got {size!r}"
    duration = body.get("duration")
    if duration is not None and (_not_int(duration) or duration not in spec.durations):
        return f"duration: must be {_choices(spec.durations)}, got {duration!r}"
    return None


def _check_frames(body: dict[str, Any], spec: ModelSpec) -> str | None:
    names = ["image"] if spec.takes_image else []
    if spec.last_frame is Frame.REQUIRED or (
        spec.last_frame is Frame.OPTIONAL and "last_frame" in body
    ):
        names.append("last_frame")
    for name in names:
        reason = _check_image(name, body.get(name), spec.image)
        if reason:
            return reason
    return None


def _check_image(name: str, image: Any, limits: ImageLimits) -> str | None:
    if not isinstance(image, str) or not image.strip():
        return f"{name}: field required (an http(s) URL or base64 data)"
    if _is_http_url(image):
        return None
    match = _DATA_URI.match(image.strip())
    if not match:
        return f"{name}: must be an http(s) URL or data:image/...;base64,... data"
    try:
        raw = base64.b64decode(match.group(2), validate=True)
    except (binascii.Error, ValueError):
        return f"{name}: the base64 data cannot be decoded"
    if len(raw) > limits.max_bytes:
        return f"{name}: {len(raw) / 1e6:.1f} MB is over the limit of {limits.describe_bytes()}"
    reason = _check_image_bytes(raw, limits)
    return f"{name}: {reason}" if reason else None


def _check_image_bytes(raw: bytes, limits: ImageLimits) -> str | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw)) as img:
                kind, (width, height) = img.format, img.size
                transparent = kind == "PNG" and _has_transparency(img)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError):
        return "the data is not a readable image"
    if kind not in limits.formats:
        return f"format {kind} is not accepted (use JPEG, PNG, BMP or WEBP)"
    for side, size in (("width", width), ("height", height)):
        if size < limits.min_side:
            return f"{side} {size} px is below {limits.min_side}"
        if size > limits.max_side:
            return f"{side} {size} px is above {limits.max_side}"
    if transparent and not limits.transparency:
        return "PNG with transparency is not accepted"
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
