"""The dry-run plan: rows by fate, seconds of video, cost, time and budget."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchwan.plan import (
    Plan,
    estimate_minutes,
    format_minutes,
    format_money,
    format_plan,
    make_plan,
)
from batchwan.values import DEFAULT_PRICES, CheckedRow, Status


def row(key: str, resolution: str, duration: int, status: Status = Status.PENDING) -> CheckedRow:
    """A checked row as validation would hand it over."""
    return CheckedRow(
        position=0,
        key=key,
        row_id=key,
        status=status,
        request={"prompt": "p", "image": "x.png", "resolution": resolution, "duration": duration},
        image_path=None,
        content_hash=key,
    )


# A rerun of a sheet: every fate a row can have, by hand (cost at list prices).
MIXED_ROWS = [
    row("a", "480P", 5),  # new, $0.25
    row("b", "720P", 10),  # new, $1.00
    row("c", "1080P", 10),  # new, $1.50
    row("d", "1080P", 5),  # done
    row("e", "720P", 5),  # in flight
    row("f", "480P", 10),  # failed
    row("g", "720P", 5, Status.INVALID),  # invalid
    row("a", "480P", 5, Status.DUPLICATE),  # duplicate: shares row a's key
    row("h", "1080P", 5),  # recorded pending: new, $0.75
    row("i", "720P", 10),  # unknown
    row("j", "480P", 10, Status.INVALID),  # invalid now, though its id succeeded before
    row("k", "1080P", 10),  # recorded invalid, valid now: new, $1.50
]
MIXED_EXISTING = {
    "d": Status.SUCCEEDED,
    "e": Status.RUNNING,
    "f": Status.FAILED,
    "h": Status.PENDING,
    "i": Status.UNKNOWN,
    "j": Status.SUCCEEDED,
    "k": Status.INVALID,
}


def mixed_plan(**kwargs: object) -> Plan:
    """The mixed sheet at concurrency 2, 2 creates/s, $2.25 committed, a $5 ceiling."""
    options: dict[str, Any] = {"max_cost": 5.0, "committed": 2.25} | kwargs
    return make_plan(
        MIXED_ROWS,
        MIXED_EXISTING,
        prices=DEFAULT_PRICES,
        concurrency=2,
        rate=2.0,
        **options,
    )


def test_mixed_sheet_matches_hand_count() -> None:
    """Every count, second, dollar and minute of a mixed rerun matches the hand count."""
    plan = mixed_plan()
    assert (plan.new, plan.done, plan.in_flight, plan.invalid, plan.duplicate) == (5, 1, 1, 2, 1)
    assert (plan.failed, plan.unknown, plan.total_rows) == (1, 1, 12)
    assert plan.video_seconds == {"480P": 5, "720P": 10, "1080P": 25}
    assert plan.cost_new == pytest.approx(5.00)
    assert plan.cost_committed == pytest.approx(2.25)
    assert plan.cost_total == pytest.approx(7.25)
    # $2.25 + a 0.25 + b 1.00 + c 1.50 = $5.00 fits exactly; h ($0.75) does not, nor k after it.
    assert (plan.max_cost, plan.over_budget_rows) == (5.0, 2)
    # Low: fast renders 1+2+2+1+2 = 8 min over 2 slots. High: slow renders of the new rows and
    # the one in flight, 5+10+10+5+10+5 = 45 min over 2 slots, plus half the longest (10 min).
    assert plan.estimated_minutes == pytest.approx((4.0, 27.5))


@pytest.mark.parametrize(
    ("flags", "new", "failed", "unknown", "cost_new"),
    [
        ({}, 5, 1, 1, 5.00),
        ({"retry_failed": True}, 6, 0, 1, 5.50),
        ({"resubmit_unknown": True}, 6, 1, 0, 6.00),
        ({"retry_failed": True, "resubmit_unknown": True}, 7, 0, 0, 6.50),
    ],
)
def test_retry_flags_count_those_rows_as_new(
    flags: dict[str, bool], new: int, failed: int, unknown: int, cost_new: float
) -> None:
    """--retry-failed and --resubmit-unknown move those rows into what would be sent."""
    plan = mixed_plan(**flags)
    assert (plan.new, plan.failed, plan.unknown) == (new, failed, unknown)
    assert plan.cost_new == pytest.approx(cost_new)


def test_first_run_sends_every_valid_row() -> None:
    """With no run folder yet, every valid row is new and nothing is committed."""
    plan = make_plan(MIXED_ROWS, {}, prices=DEFAULT_PRICES, concurrency=2, rate=2.0)
    assert (plan.new, plan.done, plan.in_flight, plan.failed, plan.unknown) == (9, 0, 0, 0, 0)
    assert (plan.cost_committed, plan.max_cost, plan.over_budget_rows) == (0.0, None, 0)


def test_empty_sheet_plans_nothing() -> None:
    """An empty sheet costs nothing and takes no time."""
    plan = make_plan([], {}, prices=DEFAULT_PRICES, concurrency=2, rate=2.0)
    assert plan.total_rows == 0
    assert (plan.cost_new, plan.estimated_minutes, plan.video_seconds) == (0.0, (0.0, 0.0), {})


def test_prices_from_the_job_file_are_used() -> None:
    """Overridden prices change the estimate."""
    rows = [row("a", "720P", 10), row("b", "720p", 5)]
    plan = make_plan(rows, {}, prices={"720P": 0.2}, concurrency=1, rate=1.0)
    assert plan.cost_new == pytest.approx(3.0)
    assert plan.video_seconds == {"720P": 15}


def test_unpriced_resolution_of_a_row_to_send_is_counted_apart_never_as_zero() -> None:
    """A row that would be sent at a resolution with no price is a plan line that says so."""
    plan = make_plan(
        [row("a", "4K", 5), row("b", "480P", 5)], {}, prices=DEFAULT_PRICES, concurrency=1,
        rate=1.0,
    )  # fmt: skip
    assert (plan.unpriced_rows, plan.cost_new) == (1, pytest.approx(0.25))
    text = format_plan(plan)
    assert re.search(r"^  wan2.5-i2v-preview 4K\s+5 s  \(price unknown: set it under", text, re.M)
    assert re.search(r"^  price unknown\s+1 row  \(not counted above\)$", text, re.M)


def test_unpriced_resolution_of_an_invalid_row_is_not_priced() -> None:
    """Rows that will not be sent are never priced."""
    plan = make_plan(
        [row("a", "4K", 5, Status.INVALID)], {}, prices=DEFAULT_PRICES, concurrency=1, rate=1.0
    )
    assert (plan.invalid, plan.cost_new) == (1, 0.0)


@pytest.mark.parametrize(
    ("costs_resolution", "max_cost", "committed", "over"),
    [
        (["720P"] * 4, None, 0.0, 0),
        (["720P"] * 4, 4.0, 0.0, 0),
        (["720P"] * 4, 3.99, 0.0, 1),
        (["720P"] * 4, 2.5, 0.0, 2),
        (["720P"] * 4, 3.0, 2.0, 3),
        (["720P"] * 4, 0.0, 0.0, 4),
        (["720P"] * 4, 1.0, 5.0, 4),
        # Rows are taken in sheet order: a cheap row after one that did not fit waits too.
        (["1080P", "480P"], 1.0, 0.0, 2),
        (["480P", "1080P"], 1.0, 0.0, 1),
    ],
)
def test_over_budget_rows(
    costs_resolution: list[str], max_cost: float | None, committed: float, over: int
) -> None:
    """Rows go in sheet order while committed + cost <= max_cost; the rest would stay pending."""
    rows = [row(str(n), res, 10) for n, res in enumerate(costs_resolution)]
    plan = make_plan(
        rows,
        {},
        prices=DEFAULT_PRICES,
        concurrency=1,
        rate=1.0,
        max_cost=max_cost,
        committed=committed,
    )
    assert plan.over_budget_rows == over


def test_budget_is_not_fooled_by_float_rounding() -> None:
    """Three $0.10 rows fit a $0.30 ceiling, though 0.1 + 0.1 + 0.1 > 0.3 in floating point."""
    rows = [row(str(n), "720P", 1) for n in range(3)]
    plan = make_plan(rows, {}, prices={"720P": 0.1}, concurrency=1, rate=1.0, max_cost=0.3)
    assert plan.over_budget_rows == 0


@pytest.mark.parametrize(
    ("new", "flying", "concurrency", "rate", "expected"),
    [
        ([5], [], 1, 2.0, (1.0, 5.0)),
        ([10], [], 1, 2.0, (2.0, 10.0)),
        ([5, 5, 5, 5], [], 2, 2.0, (2.0, 12.5)),
        ([5, 5, 5, 5], [], 4, 2.0, (1.0, 8.75)),
        # The create rate, not the renders, bounds 601 rows at 1 create/s on 1,000 slots:
        # the last create goes 600 s after the first.
        ([5] * 601, [], 1000, 1.0, (10.0, 15.0)),
        # Rows in flight may finish at once, or take a full slow render.
        ([], [10], 2, 2.0, (0.0, 10.0)),
        ([], [], 2, 2.0, (0.0, 0.0)),
    ],
)
def test_estimate_minutes(
    new: list[int],
    flying: list[int],
    concurrency: int,
    rate: float,
    expected: tuple[float, float],
) -> None:
    """The time estimate follows its documented model, computed by hand."""
    assert estimate_minutes(new, flying, concurrency=concurrency, rate=rate) == pytest.approx(
        expected
    )


@given(
    st.lists(st.sampled_from([5, 10]), max_size=50),
    st.lists(st.sampled_from([5, 10]), max_size=5),
    st.integers(1, 20),
    st.floats(0.05, 10),
)
def test_estimate_low_never_exceeds_high(
    new: list[int], flying: list[int], concurrency: int, rate: float
) -> None:
    """Whatever the rows and limits, the low estimate is at most the high one."""
    low, high = estimate_minutes(new, flying, concurrency=concurrency, rate=rate)
    assert 0 <= low <= high


@pytest.mark.parametrize(("concurrency", "rate"), [(0, 1.0), (1, 0.0), (1, -1.0)])
def test_estimate_refuses_impossible_limits(concurrency: int, rate: float) -> None:
    """A concurrency below 1 or a non-positive rate is a programming error."""
    with pytest.raises(ValueError, match="must be"):
        estimate_minutes([5], [], concurrency=concurrency, rate=rate)


@pytest.mark.parametrize(
    ("usd", "text"), [(0, "$0.00"), (0.25, "$0.25"), (1500, "$1,500.00"), (7.255, "$7.25")]
)
def test_format_money(usd: float, text: str) -> None:
    """Money shows dollars with thousands separators and cents."""
    assert format_money(usd) == text


@pytest.mark.parametrize(
    ("minutes", "text"),
    [(0.5, "under 1 min"), (1, "1 min"), (4.2, "5 min"), (60, "1 h 00 min"), (125.5, "2 h 06 min")],
)
def test_format_minutes(minutes: float, text: str) -> None:
    """Minutes round up, and hours show from one hour on."""
    assert format_minutes(minutes) == text


def test_format_plan_of_a_first_run_is_exact() -> None:
    """A first run's plan prints this aligned table, and nothing about failed or budget."""
    rows = [row("a", "480P", 5), row("b", "1080P", 10), row("c", "720P", 5, Status.INVALID)]
    plan = make_plan(rows, {}, prices=DEFAULT_PRICES, concurrency=2, rate=2.0)
    assert format_plan(plan) == (
        "rows\n"
        "  new, would be sent              2\n"
        "  already done                    0\n"
        "  in flight, would be polled      0\n"
        "  invalid                         1  (batchwan validate says why)\n"
        "  duplicate                       0\n"
        "  total                           3\n"
        "\n"
        "video to generate\n"
        "  wan2.5-i2v-preview 480P       5 s  ($0.25)\n"
        "  wan2.5-i2v-preview 1080P     10 s  ($1.50)\n"
        "  total                        15 s\n"
        "\n"
        "cost (estimated, USD)\n"
        "  new                         $1.75\n"
        "  already committed           $0.00\n"
        "  total                       $1.75\n"
        "\n"
        "time                          2 min to 13 min  (at the typical 1-5 min per 5 s clip)\n"
    )


def test_format_plan_of_a_rerun_shows_every_fate_and_the_budget() -> None:
    """A rerun's plan lists failed and unknown rows, the committed cost and the budget line."""
    text = format_plan(mixed_plan())
    expected_lines = [
        r"  new, would be sent\s+5",
        r"  already done\s+1",
        r"  in flight, would be polled\s+1",
        r"  failed, not sent again\s+1  \(--retry-failed sends them\)",
        r"  unknown, not sent again\s+1  \(--resubmit-unknown sends them\)",
        r"  invalid\s+2  \(batchwan validate says why\)",
        r"  duplicate\s+1",
        r"  total\s+12",
        r"  wan2.5-i2v-preview 1080P\s+25 s  \(\$3.75\)",
        r"  new\s+\$5.00",
        r"  already committed\s+\$2.25",
        r"  total\s+\$7.25",
        r"  max cost\s+\$5.00  \(3 of 5 new rows fit, 2 would stay pending\)",
        r"time\s+4 min to 28 min  \(at the typical 1-5 min per 5 s clip\)",
    ]
    for pattern in expected_lines:
        assert re.search(f"^{pattern}$", text, re.MULTILINE), pattern


def test_format_plan_aligns_every_value() -> None:
    """Every value in the table ends in the same column, so a person can read down it."""
    lines = format_plan(mixed_plan()).splitlines()
    ends = {
        len(line.split("  (")[0])
        for line in lines
        if line.startswith("  ")  # the indented lines carry the numbers
    }
    assert len(ends) == 1


def test_format_plan_budget_line_when_everything_fits() -> None:
    """With a ceiling that covers every new row, the budget line says so."""
    text = format_plan(mixed_plan(max_cost=100.0))
    assert re.search(r"^  max cost\s+\$100.00  \(all 5 new rows fit\)$", text, re.MULTILINE)


def test_format_plan_says_when_the_ceiling_is_already_exceeded() -> None:
    """Committed spend above the ceiling: the budget line says by how much, and that nothing
    new would be sent."""
    text = format_plan(mixed_plan(max_cost=1.0))
    assert re.search(
        r"^  max cost\s+\$1.00  \(already exceeded by \$1.25: no new row would be sent\)$",
        text,
        re.MULTILINE,
    )


def text_row(key: str, model: str, **request: object) -> CheckedRow:
    """A valid row of a text model."""
    return CheckedRow(
        position=0, key=key, row_id=key, status=Status.PENDING,
        request={"prompt": "p", **request}, image_path=None, content_hash=key, model=model,
    )  # fmt: skip


def test_plan_lines_by_model_and_resolution_show_the_sizes_sent() -> None:
    """New rows are counted per model and tier; a text model's line names its sizes, defaults
    included, and is priced at the model's own price."""
    rows = [
        text_row("a", "wan2.2-t2v-plus", size="832*480"),
        text_row("b", "wan2.2-t2v-plus"),  # default 1920*1080
        text_row("c", "wan2.2-t2v-plus", size="1440*1440"),
        text_row("d", "wan2.6-t2v", duration=15),
    ]
    plan = make_plan(rows, {}, prices={}, concurrency=1, rate=1.0)
    assert [(line.label, line.rows, line.seconds, line.cost) for line in plan.lines] == [
        ("wan2.2-t2v-plus 480P (size 832*480)", 1, 5, pytest.approx(0.10)),
        ("wan2.2-t2v-plus 1080P (size 1440*1440, 1920*1080)", 2, 10, pytest.approx(1.00)),
        ("wan2.6-t2v 720P (size 1280*720)", 1, 15, pytest.approx(1.50)),
    ]
    assert plan.cost_new == pytest.approx(2.60)
