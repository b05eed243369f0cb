"""YAML as sheets and job files read it: text kept as typed, item lines, alias bombs refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from batchwan.errors import InputError


# mypy cannot type a base class chosen at run time; both choices are safe loaders.
class _TextLoader(yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader):  # type: ignore[misc]
    """A safe loader that keeps plain scalars as typed text; only null and `<<` are resolved."""


# Without YAML 1.1's implicit typing, `0123`, `1_000`, `yes` and `5.0` reach validation as typed.
_TextLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag.endswith((":null", ":merge"))]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _LinedDict(dict[Any, Any]):
    """A YAML mapping that remembers the line it starts on."""

    line: int | None = None


def _lined_map(loader: Any, node: yaml.MappingNode) -> Iterator[dict[Any, Any]]:
    data = _LinedDict()
    data.line = node.start_mark.line + 1
    yield data
    data.update(loader.construct_mapping(node))


_TextLoader.add_constructor("tag:yaml.org,2002:map", _lined_map)


def parse_yaml(path: Path, text: str, *, typed: bool) -> Any:
    """Parse one YAML document; InputError on any YAML error (typed=False keeps text)."""
    loader: Any = _TextLoader
    if typed:
        loader = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader
    try:
        data = yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        reason = str(exc).replace("\n", " ")
        raise InputError(f"{path}: is not valid YAML: {reason}") from None
    except (RecursionError, ValueError, TypeError, OverflowError) as exc:
        raise InputError(f"{path}: is not usable YAML: {exc}") from None
    if not _fits(data, _YAML_ALIAS_ROOM * len(text) + 100_000):
        raise InputError(
            f"{path}: its YAML aliases (*name) expand to far more values than the file holds; "
            "write the values out instead of nesting aliases"
        )
    return data


#: How many values a YAML file may expand to, per character of text. Aliases are shared, not
#: copied, when loaded; but every later step (cells as text, messages) walks them in full, so
#: a few nested aliases (the "billion laughs") would take minutes and gigabytes. `<<: *defaults`
#: in every row stays far below this.
_YAML_ALIAS_ROOM = 10


def _fits(data: Any, budget: int) -> bool:
    """Whether ``data``, with every alias expanded, holds at most ``budget`` values."""
    stack = [data]
    seen = 0
    while stack:
        value = stack.pop()
        seen += 1
        if seen > budget:
            return False
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return True
