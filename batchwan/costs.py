"""What a row costs: USD per second of video, by resolution."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from batchwan.errors import InputError
from batchwan.models import DEFAULT_PRICES


def normalise_resolution(resolution: object) -> str:
    """Spell a resolution the way the API and the prices table do: ``720p`` -> ``720P``."""
    text = str(resolution).strip().upper()
    # YAML reads `720:` as the integer 720; a price table written that way still means 720P.
    return f"{text}P" if text.isdigit() else text


def _describe(prices: Mapping[str, float]) -> str:
    return ", ".join(f"{res} ${price:g}/s" for res, price in prices.items()) or "(empty)"


def row_cost(resolution: str, duration: int, prices: Mapping[str, float]) -> float:
    """Estimated USD for one clip: the price per second at its resolution times its seconds."""
    key = normalise_resolution(resolution)
    if key not in prices:
        raise InputError(
            f"no price for resolution {resolution!r}; the prices table has {_describe(prices)} "
            "(add it under `prices:` in the job file)"
        )
    return prices[key] * duration


def _price_value(resolution: str, value: Any) -> float:
    wrong = InputError(
        f"prices: {resolution}: must be a non-negative number of USD per second of video "
        f"(e.g. 0.10), got {value!r}"
    )
    # bool is an int to Python, but `720P: yes` is a typo, not a price.
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise wrong
    try:
        price = float(value.strip().removeprefix("$")) if isinstance(value, str) else float(value)
    except ValueError:
        raise wrong from None
    if not math.isfinite(price) or price < 0:
        raise wrong
    return price


def validate_prices(prices: Mapping[str, Any] | None) -> dict[str, float]:
    """Check a job file's ``prices:``; the result keeps the defaults for resolutions left out."""
    if prices is None:
        return dict(DEFAULT_PRICES)
    if not isinstance(prices, Mapping):
        raise InputError(
            "prices: must be a mapping of resolution to USD per second of video, "
            f"e.g. {{720P: 0.10}}; got {type(prices).__name__}"
        )
    result = dict(DEFAULT_PRICES)
    seen: dict[str, object] = {}
    for raw_key, value in prices.items():
        key = normalise_resolution(raw_key)
        if not key:
            raise InputError("prices: an entry has an empty resolution")
        if key in seen:
            raise InputError(
                f"prices: {seen[key]!r} and {raw_key!r} are the same resolution ({key}); "
                "give it once"
            )
        seen[key] = raw_key
        result[key] = _price_value(key, value)
    return result
