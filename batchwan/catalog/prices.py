"""What a row costs: USD per second of video, by model and resolution.

The registry's prices are the defaults; a job file's ``prices:`` overrides them, either for every
model at a resolution (``720P: 0.12``, as job files always wrote it) or for one model
(``wan2.2-i2v-flash: {480P: 0.015}``), the model's own line winning. A price nobody knows is
None, never zero: the plan says so and a budget refuses to guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from batchwan.catalog.registry import find_model, unknown_model_message
from batchwan.catalog.spec import TIERS
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


@dataclass(frozen=True)
class PriceBook:
    """The prices of a run: the registry's, under the job file's overrides."""

    by_resolution: Mapping[str, float] = field(default_factory=dict)  # every model
    by_model: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # one model's

    def per_second(self, model: str, resolution: str) -> float | None:
        """USD per second of video for a model at a resolution; None when nobody knows it."""
        tier = normalise_resolution(resolution)
        own = self.by_model.get(model, {})
        if tier in own:
            return own[tier]
        if tier in self.by_resolution:
            return self.by_resolution[tier]
        spec = find_model(model)
        return spec.price(tier) if spec is not None else None

    def cost(self, model: str, resolution: str, duration: int) -> float | None:
        """Estimated USD for one clip, None when its price is unknown."""
        price = self.per_second(model, resolution)
        return None if price is None else price * duration


def _price(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InputError(f"{where} must be a number of at least 0, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not number >= 0 or number == float("inf"):
        raise InputError(f"{where} must be a number of at least 0, got {value!r}")
    return number


def parse_prices(
    value: Mapping[Any, Any], *, source: str = ""
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """A job file's ``prices:`` -> (every model's price per tier, each named model's own).

    InputError naming the key when a tier or model is unknown or a price is not a number;
    ``source`` (the job file, as ``path: ``) starts each message.
    """
    where = f"{source}`prices:`"
    by_resolution: dict[str, float] = {}
    by_model: dict[str, dict[str, float]] = {}
    for key, price in value.items():
        if isinstance(price, Mapping):
            spec = find_model(str(key))
            if spec is None:
                raise InputError(f"{where} has {key!r}: {unknown_model_message(str(key))}")
            own: dict[str, float] = {}
            for resolution, amount in price.items():
                tier = normalise_resolution(resolution)
                if tier not in spec.resolutions:
                    raise InputError(
                        f"{where} {spec.name} has {resolution!r}; "
                        f"{spec.name} renders {', '.join(spec.resolutions)}"
                    )
                own[tier] = _price(f"{source}`prices: {spec.name}: {tier}:`", amount)
            by_model[spec.name] = own
            continue
        tier = normalise_resolution(key)
        if tier not in TIERS:
            raise InputError(
                f"{where} has {key!r}; use {', '.join(TIERS)} (every model) "
                "or a model name with its own resolutions"
            )
        by_resolution[tier] = _price(f"{source}`prices: {tier}:`", price)
    return by_resolution, by_model
