"""Each model's rules for its text fields: turn a cell into the API's value, or say how to fix it.

Each rule takes the cell's text (already stripped, never empty) and returns ``(value, None)`` or
``(None, message)``; a message names the model and the values it takes. The limits come from the
model's ``ModelSpec``. Images are checked in ``batchwan.checks.imagesource`` and
``batchwan.checks.media``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from batchwan.catalog.spec import SHOT_TYPES, SIZE_TIERS, ModelSpec, tier_of_size

_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0"})
# A whole number, optionally written with a zero fraction (`5.0`), as spreadsheets export them.
_WHOLE = re.compile(r"[+-]?[0-9]+(?:\.0*)?")
_SPACE = re.compile(r"\s")
_SHOWN = 60  # longest cell text quoted back in a message

Result = tuple[Any, str | None]
Rule = Callable[[str], Result]


def shown(text: str) -> str:
    """A cell's text as quoted in a message, cut short when long."""
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def boolean(text: str) -> Result:
    """true/false, yes/no or 1/0 in any case -> bool."""
    lowered = text.lower()
    if lowered in _TRUE:
        return True, None
    if lowered in _FALSE:
        return False, None
    return None, f"must be true or false (or yes/no, 1/0), got {shown(text)}"


def _whole(text: str) -> int | None:
    if not _WHOLE.fullmatch(text):
        return None
    return int(text.split(".", 1)[0])


def url_problem(text: str) -> str | None:
    """Why a text is not an http(s) URL with a host, or None when it is one."""
    if _SPACE.search(text):
        return f"{shown(text)} contains a space; write it as %20"
    try:
        parts = urlsplit(text)
        host = parts.hostname
        parts.port  # noqa: B018 - reading it validates the port
    except ValueError:
        return f"{shown(text)} is not a well-formed URL"
    if parts.scheme.lower() not in ("http", "https"):
        return f"must be an http(s) URL, got {shown(text)}"
    if not host:
        return f"{shown(text)} has no host name; write it as https://host/path"
    return None


def audio_url(text: str) -> Result:
    """An http(s) URL with a host."""
    problem = url_problem(text)
    return (None, problem) if problem else (text, None)


_SIZE = re.compile(r"([0-9]+)\s*[*xX\u00d7]\s*([0-9]+)")
# A template is a named effect (`solaron`): one word, as the provider's pages spell them.
_TEMPLATE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def either(values: Sequence[object]) -> str:
    """``5, 10 or 15``; a single value reads ``only 5``."""
    texts = [str(v) for v in values]
    if len(texts) == 1:
        return f"only {texts[0]}"
    return f"{', '.join(texts[:-1])} or {texts[-1]}"


def _length(model: str, limit: int) -> Rule:
    def rule(text: str) -> Result:
        """The text itself, or how far over the model's limit it is."""
        if len(text) > limit:
            return None, f"{len(text)} characters; {model} takes at most {limit} (shorten it)"
        return text, None

    return rule


def _resolution(spec: ModelSpec) -> Rule:
    def rule(text: str) -> Result:
        """One of the model's resolutions, in any case -> the upper-case name."""
        upper = text.upper()
        if upper in spec.resolutions:
            return upper, None
        hint = f"; did you mean {upper}P?" if f"{upper}P" in spec.resolutions else ""
        return None, f"{spec.name} takes {either(spec.resolutions)}, got {shown(text)}{hint}"

    return rule


def normal_size(text: str) -> str:
    """``1280x720`` or ``1280 * 720`` spelled as the API spells sizes: ``1280*720``."""
    match = _SIZE.fullmatch(text.strip())
    return f"{match.group(1)}*{match.group(2)}" if match else text.strip()


def _size(spec: ModelSpec) -> Rule:
    def rule(text: str) -> Result:
        """One of the model's sizes (``W*H``, also written ``WxH``)."""
        size = normal_size(text)
        if size in spec.sizes:
            return size, None
        tier = tier_of_size(size)
        if tier is not None:
            return None, (
                f"{size} is a {tier} size; {spec.name} takes {either(spec.resolutions)} sizes: "
                f"{either(spec.sizes)}"
            )
        return None, f"{spec.name} takes {either(spec.sizes)}, got {shown(text)}"

    return rule


def size_for_resolution(spec: ModelSpec, text: str) -> Result:
    """A text model's `resolution` cell (``720P``) -> that tier's landscape size."""
    value, problem = _resolution(spec)(text)
    if problem:
        return None, problem
    return SIZE_TIERS[value][0], None


def _duration(spec: ModelSpec) -> Rule:
    def rule(text: str) -> Result:
        """One of the model's durations (also written 5.0) -> int."""
        value = _whole(text)
        if value in spec.durations:
            return value, None
        return None, f"{spec.name} takes {either(spec.durations)}, got {shown(text)}"

    return rule


def _seed(spec: ModelSpec) -> Rule:
    def rule(text: str) -> Result:
        """A whole number from 0 to the model's largest seed -> int."""
        value = _whole(text)
        if value is not None and 0 <= value <= spec.seed_max:
            return value, None
        return None, f"must be a whole number from 0 to {spec.seed_max}, got {shown(text)}"

    return rule


def _shot_type(spec: ModelSpec) -> Rule:
    def rule(text: str) -> Result:
        """single or multi, in any case."""
        lowered = text.lower()
        if lowered in SHOT_TYPES:
            return lowered, None
        return None, f"{spec.name} takes {either(SHOT_TYPES)}, got {shown(text)}"

    return rule


def template(text: str) -> Result:
    """A template (effect) name: one word."""
    if _TEMPLATE.fullmatch(text):
        return text, None
    return None, f"must be a template name such as solaron (one word), got {shown(text)}"


@cache
def field_rules(spec: ModelSpec) -> dict[str, Rule]:
    """The rule for every field the model takes, except its images (they need files)."""
    rules: dict[str, Rule] = {
        "prompt": _length(spec.name, spec.prompt_max),
        "negative_prompt": _length(spec.name, spec.negative_prompt_max),
        "audio": boolean,
        "audio_url": audio_url,
        "resolution": _resolution(spec),
        "size": _size(spec),
        "duration": _duration(spec),
        "shot_type": _shot_type(spec),
        "template": template,
        "prompt_extend": boolean,
        "seed": _seed(spec),
        "safety_filter": boolean,
    }
    return {name: rule for name, rule in rules.items() if name in spec.fields}
