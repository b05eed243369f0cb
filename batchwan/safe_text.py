"""Text from a sheet or the provider made safe to print on a terminal or write to a log.

A cell or an error message can carry escape sequences that set a terminal's title, write its
clipboard (OSC 52) or move the cursor over earlier lines, and bidi overrides that make a line
read differently from what it holds. Everything printed passes through ``clean``.
"""

from __future__ import annotations

import re
import unicodedata

# Whole escape sequences first, so their parameters do not survive as stray text:
# CSI (ESC [ ... final), OSC (ESC ] ... BEL or ST), DCS/PM/APC/SOS strings, two-byte escapes.
_SEQUENCES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x9b[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b[\]PX^_]|[\x9d\x90\x98\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
)
# What is left that a terminal acts on: C0 controls but tab and newline, DEL, C1 controls,
# and the bidi embeddings, overrides and isolates.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_BREAKS = re.compile(r"[\r\n\u2028\u2029\x85]+")


def clean(text: object, *, keep_newlines: bool = True) -> str:
    """``text`` with escape sequences and control characters removed; without
    ``keep_newlines``, line breaks become spaces so that one event stays one line."""
    value = str(text)
    if value.isascii() and value.isprintable():  # nothing to remove: the common case, at C speed
        return value
    value = _SEQUENCES.sub("", value)
    if not keep_newlines:
        value = _BREAKS.sub(" ", value)
    else:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROLS.sub("", value)


def has_controls(text: str) -> bool:
    """True when ``text`` holds something ``clean`` would remove."""
    return clean(text) != text.replace("\r\n", "\n").replace("\r", "\n")


def one_line(text: object, limit: int = 300) -> str:
    """``text`` cleaned for a record or a message: one line, no invisible format characters,
    white space folded, at most ``limit`` characters (a server can put anything in a detail)."""
    value = str(text)
    if value.isascii() and value.isprintable():  # the common case, at C speed
        value = " ".join(value.split())
        return value if len(value) <= limit else value[: limit - 1] + "…"
    value = _SEQUENCES.sub("", value)
    value = "".join(
        " " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in value
    )
    value = " ".join(value.split())
    return value if len(value) <= limit else value[: limit - 1] + "…"
