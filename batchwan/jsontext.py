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
    try:
        chunks = make(
            None, reference.default, json.encoder.encode_basestring_ascii, None, key, item,
            sort_keys, False, True,
        )  # fmt: skip  # markers, default, encoder, indent, separators, sort_keys, skipkeys, nan
    except TypeError:  # the accelerator's arguments changed: take the library's own way
        return reference.encode

    def encode(value: Any) -> str:
        return "".join(chunks(value, 0))

    # Row keys are hashes of this text: an accelerator called in a way it no longer means
    # would make every row look new, so it is used only once it agrees with the library's
    # pure Python encoder (what ``iterencode`` runs when not asked for one shot).
    if encode(_SAMPLE) != "".join(reference.iterencode(_SAMPLE)):
        return reference.encode
    return encode


#: Every kind of value a request holds, and keys out of order.
_SAMPLE = {"z": [1, -2.5, 1e21, None, True, False], "a": 'é"\n\u2028', "m": {"k": -0.0, "j": ""}}


#: ``json.dumps(value, sort_keys=True, separators=(",", ":"))``: a request's canonical text.
canonical_json = _encoder(True, ",", ":")
#: ``json.dumps(value)``: how the record keeps a row's request and own cells.
plain_json = _encoder(False, ", ", ": ")
