"""Read a SOURCE into one frozen JobSpec: a job file's settings, or a bare sheet with defaults.

A job file is a YAML mapping with a ``sheet:`` key. A YAML *sheet* is a list of mappings or a
mapping with ``rows:``; both end in ``.yaml``, and the top-level shape tells them apart. Paths in
a job file (``sheet:``, ``out:``) are relative to the job file. Unknown keys are refused, since a
misspelt ``max_cost`` would otherwise silently lift a spending limit.
"""

from __future__ import annotations

import codecs
import contextlib
import logging
import math
import os
from pathlib import Path
from typing import Any

from batchwan.catalog.prices import parse_prices
from batchwan.errors import InputError
from batchwan.sheet.headers import canonical_field
from batchwan.sheet.loader import read_text
from batchwan.sheet.yamltext import parse_yaml
from batchwan.values import API_FIELDS, JobSpec

log = logging.getLogger(__name__)

#: Every key a job file may have.
JOB_KEYS: tuple[str, ...] = (
    "sheet",
    "columns",
    "defaults",
    "model",
    "out",
    "concurrency",
    "rate",
    "poll_interval",
    "max_cost",
    "prices",
    "group_by",
    "image_root",
    "tab",
    "include_hidden",
    "encoding",
    "delimiter",
    "limit",
    "allow_repeat",
    "store",
)

#: The same bounds as the command line's --concurrency, --rate and --poll-interval: a rate of
#: 1e-6 would wait days between creates, a poll interval of 1e-9 would hammer the provider.
MAX_CONCURRENCY = 512
LEAST_INTERVAL = 0.01

#: What ``columns:`` may map: the API's fields, the row's id, its model and its take.
MAPPABLE: tuple[str, ...] = (*API_FIELDS, "id", "model", "take")


def load_source(path: Path) -> JobSpec:
    """A job file -> its JobSpec; any sheet -> JobSpec(sheet=path); InputError when unusable."""
    if path.suffix.lower() not in (".yaml", ".yml"):
        return JobSpec(sheet=path)
    data = parse_yaml(path, read_text(path), typed=True)
    if not (isinstance(data, dict) and "sheet" in data):
        return JobSpec(sheet=path)
    return _job_spec(path, data)


def _job_spec(path: Path, data: dict[Any, Any]) -> JobSpec:
    unknown = [str(k) for k in data if k not in JOB_KEYS]
    if unknown:
        raise InputError(
            f"{path}: unknown key {unknown[0]!r}; a job file may have: {', '.join(JOB_KEYS)}"
        )
    base = path.parent
    kwargs: dict[str, Any] = {"sheet": _path(path, base, "sheet", data["sheet"])}
    if data.get("out") is not None:
        kwargs["out"] = _path(path, base, "out", data["out"])
    if data.get("columns") is not None:
        kwargs["columns"] = _columns(path, data["columns"])
    if data.get("defaults") is not None:
        kwargs["defaults"] = _defaults(path, data["defaults"])
    if data.get("model") is not None:
        kwargs["model"] = _text(path, "model", data["model"])
    if data.get("concurrency") is not None:
        kwargs["concurrency"] = _whole(path, "concurrency", data["concurrency"])
    for key in ("rate", "poll_interval"):
        if data.get(key) is not None:
            kwargs[key] = _number(path, key, data[key], least=LEAST_INTERVAL)
    if data.get("max_cost") is not None:
        kwargs["max_cost"] = _number(path, "max_cost", data["max_cost"], least=0)
    if data.get("prices") is not None:
        kwargs["prices"], kwargs["model_prices"] = _prices(path, data["prices"])
    if data.get("group_by") is not None:
        kwargs["group_by"] = _group_by(path, data["group_by"])
    kwargs.update(_sheet_keys(path, base, data))
    if data.get("store") is not None:
        kwargs["store"] = _text(path, "store", data["store"])
    spec = JobSpec(**kwargs)
    log.debug("job file %s: sheet %s", path, spec.sheet)
    return spec


def _group_by(path: Path, value: Any) -> tuple[str, ...]:
    """`group_by:` as `campaign, owner` or a list of column names."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise InputError(
            f"{path}: `group_by:` must be column names (campaign, owner), got {value!r}"
        )
    return tuple(dict.fromkeys(i.strip() for i in items if i.strip()))


def _sheet_keys(path: Path, base: Path, data: dict[Any, Any]) -> dict[str, Any]:
    """How to read the sheet and how much of it to send: image_root, tab, encoding, limit..."""
    kwargs: dict[str, Any] = {}
    if data.get("image_root") is not None:
        kwargs["image_root"] = _path(path, base, "image_root", data["image_root"])
    for key in ("tab", "encoding"):
        if data.get(key) is not None:
            kwargs[key] = _text(path, key, data[key])
    if data.get("encoding") is not None:
        kwargs["encoding"] = _encoding(path, kwargs["encoding"])
    if data.get("delimiter") is not None:
        kwargs["delimiter"] = _delimiter(path, data["delimiter"])
    for key in ("include_hidden", "allow_repeat"):
        if data.get(key) is not None:
            if not isinstance(data[key], bool):
                raise InputError(f"{path}: `{key}:` must be true or false, got {data[key]!r}")
            kwargs[key] = data[key]
    if data.get("limit") is not None:
        limit = data["limit"]
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InputError(
                f"{path}: `limit:` must be a whole number of at least 1, got {limit!r}"
            )
        kwargs["limit"] = limit
    return kwargs


def _encoding(path: Path, name: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise InputError(
            f"{path}: `encoding:` {name!r} is not an encoding Python knows; "
            "try utf-8, cp1252, latin-1 or utf-16"
        ) from None


#: What `delimiter:` may say, and the character each means.
DELIMITERS = {",": ",", ";": ";", "\t": "\t", "tab": "\t", "|": "|", "comma": ",",
              "semicolon": ";", "pipe": "|"}  # fmt: skip


def _delimiter(path: Path, value: Any) -> str:
    key = value.lower() if isinstance(value, str) and len(value) > 1 else value
    if key not in DELIMITERS:
        raise InputError(f"{path}: `delimiter:` must be one of , ; | or tab, got {value!r}")
    return DELIMITERS[key]


def _text(path: Path, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{path}: `{key}:` must be text, got {value!r}")
    return value.strip()


def _path(path: Path, base: Path, key: str, value: Any) -> Path:
    text = _text(path, key, value)
    if "\0" in text:  # the OS refuses such a name later with a bare ValueError
        raise InputError(f"{path}: `{key}:` holds a NUL character ({text!r}); remove it")
    # normpath so `jobs/../samples/demo.csv` reads as `samples/demo.csv` in every message.
    return Path(os.path.normpath(base / text))


def _whole(path: Path, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONCURRENCY:
        raise InputError(
            f"{path}: `{key}:` must be a whole number from 1 to {MAX_CONCURRENCY}, got {value!r}"
        )
    return value


def _number(path: Path, key: str, value: Any, *, least: float) -> float:
    number = math.nan
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        # YAML 1.1 reads `1e-3` (no dot) as text; the person meant a number.
        with contextlib.suppress(ValueError):
            number = float(value)
    if not math.isfinite(number) or number < least:
        raise InputError(f"{path}: `{key}:` must be a number of at least {least:g}, got {value!r}")
    return number


def _mapping(path: Path, key: str, value: Any) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise InputError(f"{path}: `{key}:` must be a mapping, got {type(value).__name__}")
    return value


def _columns(path: Path, value: Any) -> dict[str, str]:
    columns: dict[str, str] = {}
    for given, column in _mapping(path, "columns", value).items():
        field = canonical_field(given) or str(given)
        if field not in MAPPABLE:
            raise InputError(
                f"{path}: `columns:` maps {field!r}, which is not an API field; "
                f"use one of: {', '.join(MAPPABLE)}"
            )
        columns[field] = _text(path, f"columns: {field}", column)
    return columns


def _defaults(path: Path, value: Any) -> dict[str, Any]:
    defaults: dict[str, Any] = {}
    for given, default in _mapping(path, "defaults", value).items():
        field = canonical_field(given) or str(given)
        if field not in API_FIELDS:
            raise InputError(
                f"{path}: `defaults:` sets {field!r}, which is not an API field; "
                f"use one of: {', '.join(API_FIELDS)}"
            )
        if isinstance(default, dict | list):
            raise InputError(f"{path}: `defaults: {field}` must be a single value")
        defaults[field] = default
    return defaults


def _prices(path: Path, value: Any) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """`prices:` per resolution for every model, and optionally per model (a nested mapping)."""
    return parse_prices(_mapping(path, "prices", value), source=f"{path}: ")
