"""Prices per second of video, and what one row costs."""

from __future__ import annotations

from typing import Any

import pytest

from batchwan.costs import normalise_resolution, row_cost, validate_prices
from batchwan.errors import InputError
from batchwan.models import DEFAULT_PRICES


@pytest.mark.parametrize(
    ("resolution", "duration", "expected"),
    [
        ("480P", 5, 0.25),
        ("480P", 10, 0.50),
        ("720P", 5, 0.50),
        ("720P", 10, 1.00),
        ("1080P", 5, 0.75),
        ("1080P", 10, 1.50),
        ("1080p", 10, 1.50),
    ],
)
def test_row_cost_is_price_per_second_times_seconds(
    resolution: str, duration: int, expected: float
) -> None:
    """A row costs its resolution's price per second times its seconds, at the list prices."""
    assert row_cost(resolution, duration, DEFAULT_PRICES) == pytest.approx(expected)


def test_a_thousand_ten_second_1080p_clips_cost_1500_dollars() -> None:
    """The API README's worked example: 1,000 rows of 10 s 1080P cost $1,500."""
    assert sum(row_cost("1080P", 10, DEFAULT_PRICES) for _ in range(1000)) == pytest.approx(1500)


def test_unknown_resolution_names_it_and_the_table() -> None:
    """A resolution missing from the prices table is an InputError naming both."""
    with pytest.raises(InputError, match=r"'4K'.*480P \$0.05/s, 720P \$0.1/s, 1080P \$0.15/s"):
        row_cost("4K", 5, DEFAULT_PRICES)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("720p", "720P"), (" 1080P ", "1080P"), (480, "480P"), ("4k", "4K")],
)
def test_normalise_resolution(raw: object, expected: str) -> None:
    """Resolutions are compared upper-case; a bare number means that many lines (P)."""
    assert normalise_resolution(raw) == expected


def test_validate_prices_keeps_defaults_for_missing_resolutions() -> None:
    """A job file that prices one resolution keeps the list prices of the others."""
    assert validate_prices({"720p": 0.12}) == {"480P": 0.05, "720P": 0.12, "1080P": 0.15}


@pytest.mark.parametrize("prices", [None, {}])
def test_validate_prices_empty_means_defaults(prices: Any) -> None:
    """An empty or absent `prices:` is the list prices, as a fresh dict."""
    result = validate_prices(prices)
    assert result == DEFAULT_PRICES
    assert result is not DEFAULT_PRICES


@pytest.mark.parametrize(
    ("value", "expected"), [(0, 0.0), (1, 1.0), (0.2, 0.2), ("0.2", 0.2), ("$0.25", 0.25)]
)
def test_validate_prices_accepts_numbers(value: Any, expected: float) -> None:
    """Prices may be written as integers, decimals or numeric strings (with or without $)."""
    assert validate_prices({"480P": value})["480P"] == pytest.approx(expected)


def test_validate_prices_adds_new_resolutions() -> None:
    """A resolution the defaults lack (another model's) can be priced in the job file."""
    assert validate_prices({"4k": 0.3})["4K"] == pytest.approx(0.3)


@pytest.mark.parametrize(
    ("prices", "message"),
    [
        ({"720P": -0.1}, r"prices: 720P: must be a non-negative number"),
        ({"720P": "cheap"}, r"prices: 720P: .*got 'cheap'"),
        ({"720P": True}, r"prices: 720P: .*got True"),
        ({"720P": None}, r"prices: 720P: .*got None"),
        ({"720P": [0.1]}, r"prices: 720P: .*got \[0.1\]"),
        ({"720P": float("nan")}, r"prices: 720P: .*got nan"),
        ({"720P": float("inf")}, r"prices: 720P: .*got inf"),
        ({"720p": 0.1, "720P": 0.2}, r"'720p' and '720P' are the same resolution"),
        ({"": 0.1}, r"empty resolution"),
        ([("720P", 0.1)], r"must be a mapping"),
    ],
)
def test_validate_prices_refuses_bad_tables(prices: Any, message: str) -> None:
    """A price that is not a non-negative finite number, or a repeated key, is an InputError."""
    with pytest.raises(InputError, match=message):
        validate_prices(prices)
