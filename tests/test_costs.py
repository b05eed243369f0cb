"""Prices per second of video, and what one row costs."""

from __future__ import annotations

import pytest

from batchwan.catalog.prices import normalise_resolution, row_cost
from batchwan.errors import InputError
from batchwan.values import DEFAULT_PRICES


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
