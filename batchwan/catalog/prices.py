"""What a row costs: USD per second of video, by resolution."""

from __future__ import annotations

from collections.abc import Mapping

from batchwan.errors import InputError


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
