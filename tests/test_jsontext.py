"""The encoders made once write exactly what json.dumps writes with the same options."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from batchwan.jsontext import canonical_json, plain_json

_VALUES = st.one_of(st.text(), st.integers(), st.booleans(), st.none(), st.floats())


@given(st.dictionaries(st.text(), _VALUES, max_size=8))
def test_plain_json_is_json_dumps(value: dict[str, Any]) -> None:
    assert plain_json(value) == json.dumps(value)


@given(st.dictionaries(st.text(), _VALUES, max_size=8))
def test_canonical_json_is_json_dumps_sorted_and_compact(value: dict[str, Any]) -> None:
    assert canonical_json(value) == json.dumps(value, sort_keys=True, separators=(",", ":"))


def test_a_list_of_names_and_nested_values_too() -> None:
    value = {"b": ["x", 1, None], "a": {"é": 1.5}}
    assert plain_json(value) == json.dumps(value)
    assert plain_json(["a", "b"]) == json.dumps(["a", "b"])
