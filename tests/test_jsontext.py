"""The encoders made once write exactly what json.dumps writes with the same options."""

from __future__ import annotations

import json
from typing import Any

import pytest
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


def test_an_accelerator_that_disagrees_or_has_other_arguments_is_not_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Row keys hash this text: a C encoder writing anything but json.dumps's text is left out."""
    from batchwan import jsontext

    def wrong(*args: Any) -> Any:
        return lambda value, level: iter(["{}"])  # answers, but not what json.dumps writes

    def other_arguments(*args: Any) -> Any:
        raise TypeError("takes 10 arguments")

    for accelerator in (wrong, other_arguments):
        monkeypatch.setattr(json.encoder, "c_make_encoder", accelerator)
        encode = jsontext._encoder(True, ",", ":")
        # The library's own encoder is what is used then (it takes its C part at each call).
        assert isinstance(getattr(encode, "__self__", None), json.JSONEncoder)
    monkeypatch.undo()
    assert getattr(jsontext._encoder(True, ",", ":"), "__self__", None) is None  # C agrees here
