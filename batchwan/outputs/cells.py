"""One results cell: its typed value, and how it is written so a spreadsheet shows it as text.

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and some read a leading
tab or carriage return the same way). A plain number such as ``-5``, ``+3``, ``-0.5`` or ``1e3``
is not a formula: it stays a number, so that a column of them still sorts and sums.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

#: A value of a typed results table: text, a whole number, an amount, a time, or nothing.
Cell = str | int | float | datetime | None

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
# A number worth storing as a number: no leading zero that a person typed on purpose (007, 01234),
# and few enough digits to stay exact in a spreadsheet.
_TYPED_NUMBER = re.compile(r"[+-]?(?:0|[1-9]\d{0,14})(?:\.\d+)?(?:[eE][+-]?\d{1,3})?")


def is_plain_number(text: str) -> bool:
    """True for text a spreadsheet reads as a number, never as a formula."""
    return _NUMBER.fullmatch(text) is not None


#: The first characters of a cell that a spreadsheet may run (``_FORMULA_STARTS``), as a set.
FORMULA_FIRST = frozenset(_FORMULA_STARTS)


def as_text_cell(value: str) -> str:
    """Make a cell that a spreadsheet would run as a formula show as text instead."""
    if value[:1] not in FORMULA_FIRST or is_plain_number(value):
        return value
    return "'" + value


def typed_number(text: str) -> int | float | None:
    """The number a sheet cell holds when it is one a person would sort by; else None.

    Text with a leading zero (a zip code, a take number) stays text, as do numbers too long to
    keep exact in a spreadsheet.
    """
    if not _TYPED_NUMBER.fullmatch(text):
        return None
    return int(text) if text.lstrip("+-").isdigit() else float(text)


def request_value(value: Any) -> Cell:
    """A field of the request as sent, as one cell: numbers stay numbers, the rest text."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def csv_text(value: Cell) -> str:
    """A typed cell as results.csv writes it."""
    # Most cells are text or whole numbers: those first (this runs for every cell of a sheet).
    if type(value) is str:
        return value if value[:1] not in FORMULA_FIRST else as_text_cell(value)
    if type(value) is int:  # a whole number is never a formula, negative ones included
        return str(value)
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, float):  # amounts in cents; any other fraction in full
        return f"{value:.2f}" if round(value, 2) == value else repr(value)
    return as_text_cell(str(value))
