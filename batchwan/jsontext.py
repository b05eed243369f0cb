"""JSON text of the flat values a run records, each encoder made once.

json.dumps builds a new encoder on every call, and so does JSONEncoder.encode for its C part:
for a big sheet, whose every row is encoded, most of the work. The values encoded here are
flat (a request, a row's own cells), so no check for cycles is needed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["canonical_json", "plain_json"]


def _encoder(sort_keys: bool, item: str, key: str) -> Callable[[Any], str]:
    """``json.dumps(value, sort_keys=sort_keys, separators=(item, key))``, made once."""
    reference = json.JSONEncoder(sort_keys=sort_keys, separators=(item, key))
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # a Python without the C accelerator
        return reference.encode
    chunks = make(
        None, reference.default, json.encoder.encode_basestring_ascii, None, key, item,
        sort_keys, False, True,
    )  # fmt: skip  # markers, default, encoder, indent, separators, sort_keys, skipkeys, allow_nan

    def encode(value: Any) -> str:
        return "".join(chunks(value, 0))

    return encode


#: ``json.dumps(value, sort_keys=True, separators=(",", ":"))``: a request's canonical text.
canonical_json = _encoder(True, ",", ":")
#: ``json.dumps(value)``: how the record keeps a row's request and own cells.
plain_json = _encoder(False, ", ", ": ")
