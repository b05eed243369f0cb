"""Look a model up by name; say which models there are when the name is not one of them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from batchwan.catalog.models import MODELS
from batchwan.catalog.spec import ModelSpec, tier_of_size

DEFAULT_MODEL = "wan2.5-i2v-preview"


def _index(models: Iterable[ModelSpec]) -> Mapping[str, ModelSpec]:
    index: dict[str, ModelSpec] = {}
    for spec in models:
        if spec.name in index:
            raise ValueError(f"model {spec.name} is listed twice")
        index[spec.name] = spec
    return MappingProxyType(index)


REGISTRY: Mapping[str, ModelSpec] = _index(MODELS)


def model_names() -> tuple[str, ...]:
    """Every registered model name, in the catalog's order."""
    return tuple(REGISTRY)


def unknown_model_message(name: str) -> str:
    """Why a model name is refused, listing the names that would work."""
    return f"unknown model {name!r}; the models are: {', '.join(REGISTRY)}"


def find_model(name: str) -> ModelSpec | None:
    """The spec of a model, None when no model has that name (case and spaces forgiven)."""
    spec = REGISTRY.get(name)
    if spec is None:
        spec = REGISTRY.get(name.strip().lower())
    return spec


def get_model(name: str) -> ModelSpec:
    """The spec of a model; KeyError with the list of known models when there is none."""
    spec = find_model(name)
    if spec is None:
        raise KeyError(unknown_model_message(name))
    return spec


def resolution_of(model: str, request: Mapping[str, Any]) -> str:
    """The resolution tier a request renders at: its own, its size's tier, or the default."""
    if "resolution" in request:
        return str(request["resolution"])
    size = request.get("size")
    if size is not None:
        return tier_of_size(str(size)) or str(size)
    return (find_model(model) or REGISTRY[DEFAULT_MODEL]).default_resolution


def duration_of(model: str, request: Mapping[str, Any]) -> int:
    """Seconds of video a request asks for: its own, or the model's default.

    An invalid row keeps the cell's text (``five``); it is never sent, and counts as the default.
    """
    value = request.get("duration")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return (find_model(model) or REGISTRY[DEFAULT_MODEL]).default_duration
