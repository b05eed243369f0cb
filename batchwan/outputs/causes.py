"""Errors grouped by cause: the provider's error code, or the field and the kind of problem.

"image too small" is one cause, whatever the sizes of the images that were too small; the
report counts rows per cause instead of per distinct error text.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from batchwan.values import RowRecord, Status

_ROW_PREFIX = re.compile(r"^\s*row \d+:\s*", re.IGNORECASE)
# One problem of an invalid row reads "field: message"; several are joined by "; ".
_PART = re.compile(r";\s+(?=[a-z_]{2,24}: )")
_FIELD = re.compile(r"^([a-z_]{2,24}): (.*)$", re.DOTALL)
# The provider's error code leads its messages (3001 upstream failure, 3005 moderation), as
# does the HTTP status of a refused create; its title follows in capitalised words.
_CODE = re.compile(r"(?:^|provider failed the task: )(\d{3,4})\b((?: [A-Z][\w-]*)*)")
_SIDES = re.compile(r"(\d+)x(\d+) px; each side must be (\d+)-(\d+) px")

# Kinds of problem, by what their message says; the first that matches names the kind.
_KINDS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), kind)
    for pattern, kind in (
        (r"outside (?:the|its|--image-root)|leads outside", "outside the allowed folder"),
        (r"\bno file\b|\bfile\b.*\bnot found\b|no such file", "file not found"),
        (r"must be at most \d+ MB|MB\b.*must be at most", "file too large"),
        (r"transparent", "has transparent pixels"),
        (r"damaged|cut short", "damaged file"),
        (r"not a readable", "unreadable file"),
        (r"the API takes", "format not accepted"),
        (r"characters; must be at most", "too long"),
        (r"s long; must be", "length out of range"),
        (r"contains a space|well-formed URL|http\(s\) URL|no host name", "not a usable URL"),
        (r"required|missing|is empty", "missing"),
        (r"must be .*, got", "not an allowed value"),
    )
)
_URL = re.compile(r"\b(?:https?|s3|gs|file)://\S+", re.IGNORECASE)
_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I)
_TOKEN = re.compile(r"\b(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[\w-]{12,}\b")  # task, trace ids, hashes
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")

NO_REASON = "(no reason given)"


def _masked(text: str) -> str:
    """What is left of a message once what differs from row to row is taken out."""
    text = _URL.sub("<url>", text)
    text = _UUID.sub("<id>", text)
    text = _TOKEN.sub("<id>", text)
    text = _QUOTED.sub("'\u2026'", text)
    text = _NUMBER.sub("#", text)
    return " ".join(text.split())


def _image_sides(message: str) -> str | None:
    found = _SIDES.search(message)
    if found is None:
        return None
    width, height, low, high = (int(g) for g in found.groups())
    if min(width, height) < low and max(width, height) <= high:
        return "too small"
    if max(width, height) > high and min(width, height) >= low:
        return "too large"
    return "sides out of range"


def _kind(message: str) -> str:
    sides = _image_sides(message)
    if sides is not None:
        return sides
    for pattern, kind in _KINDS:
        if pattern.search(message):
            return kind
    return _masked(message.split(" (")[0])[:120]


def error_causes(error: str | None) -> list[str]:
    """The causes of one row's error, in the order they appear, each once."""
    text = _ROW_PREFIX.sub("", error or "").strip()
    if not text:
        return [NO_REASON]
    code = _CODE.search(text)
    if code:
        title = code.group(2).split()
        if "Error" in title:  # "Task Execution Error", not "... Error Video" of the detail
            title = title[: len(title) - title[::-1].index("Error")]
        return [" ".join([code.group(1), *title])]
    causes: list[str] = []
    for part in _PART.split(text):
        found = _FIELD.match(part.strip())
        cause = f"{found.group(1)}: {_kind(found.group(2))}" if found else _kind(part)
        if cause and cause not in causes:
            causes.append(cause)
    return causes or [NO_REASON]


def error_reason(error: str | None) -> str:
    """The first cause of an error: what errors of the same kind have in common."""
    return error_causes(error)[0][:200]


_FAILED_STATES = frozenset({Status.FAILED, Status.UNKNOWN, Status.INVALID, Status.DUPLICATE})


@dataclass
class ErrorGroup:
    """Rows whose errors share one cause."""

    reason: str
    example: str  # the first row's error, in full
    positions: list[int] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)


def group_errors(records: Sequence[RowRecord]) -> list[ErrorGroup]:
    """The errors of failed, unknown, invalid and duplicate rows, grouped by cause, largest
    group first (ties in order of first appearance); a row with two problems counts under
    both causes."""
    groups: dict[str, ErrorGroup] = {}
    for r in records:
        if r.status not in _FAILED_STATES:
            continue
        for cause in error_causes(r.error):
            group = groups.setdefault(cause, ErrorGroup(cause, r.error or ""))
            group.positions.append(r.position)
            group.statuses[r.status.value] += 1
    return sorted(groups.values(), key=lambda g: -len(g.positions))
