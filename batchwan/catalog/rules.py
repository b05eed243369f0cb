"""The API's rules for each text field: turn a cell into the API's value, or say how to fix it.

Each rule takes the cell's text (already stripped, never empty) and returns ``(value, None)`` or
``(None, message)``. Images are checked in ``batchwan.checks.validation`` and
``batchwan.checks.media``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

MAX_PROMPT = 2000
MAX_NEGATIVE_PROMPT = 500
RESOLUTIONS = ("480P", "720P", "1080P")
DURATIONS = (5, 10)
MAX_SEED = 2147483647

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


def _length(limit: int) -> Rule:
    def rule(text: str) -> Result:
        """The text itself, or how far over the limit it is."""
        if len(text) > limit:
            return None, f"{len(text)} characters; must be at most {limit} (shorten it)"
        return text, None

    return rule


def boolean(text: str) -> Result:
    """true/false, yes/no or 1/0 in any case -> bool."""
    lowered = text.lower()
    if lowered in _TRUE:
        return True, None
    if lowered in _FALSE:
        return False, None
    return None, f"must be true or false (or yes/no, 1/0), got {shown(text)}"


def resolution(text: str) -> Result:
    """480P, 720P or 1080P in any case -> the upper-case name."""
    upper = text.upper()
    if upper in RESOLUTIONS:
        return upper, None
    hint = f"; did you mean {upper}P?" if f"{upper}P" in RESOLUTIONS else ""
    return None, f"must be 480P, 720P or 1080P, got {shown(text)}{hint}"


def _whole(text: str) -> int | None:
    if not _WHOLE.fullmatch(text):
        return None
    return int(text.split(".", 1)[0])


def duration(text: str) -> Result:
    """5 or 10 (also written 5.0) -> int."""
    value = _whole(text)
    if value in DURATIONS:
        return value, None
    return None, f"must be 5 or 10, got {shown(text)}"


def seed(text: str) -> Result:
    """A whole number from 0 to 2147483647 -> int."""
    value = _whole(text)
    if value is not None and 0 <= value <= MAX_SEED:
        return value, None
    return None, f"must be a whole number from 0 to {MAX_SEED}, got {shown(text)}"


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


#: The rule for every API field except `image`, which needs files and folders.
RULES: dict[str, Rule] = {
    "prompt": _length(MAX_PROMPT),
    "negative_prompt": _length(MAX_NEGATIVE_PROMPT),
    "audio": boolean,
    "audio_url": audio_url,
    "resolution": resolution,
    "duration": duration,
    "prompt_extend": boolean,
    "seed": seed,
    "safety_filter": boolean,
}
