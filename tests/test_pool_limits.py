"""The pool's sizes follow --concurrency; the poll window holds the poll rate."""

from __future__ import annotations

import asyncio

import pytest

from batchwan.pool.limits import MAX_CONNECTIONS, MAX_DOWNLOADS, InFlight, RateWindow, pool_sizes
from batchwan.pool.runner import RunOptions


@pytest.mark.parametrize(
    ("concurrency", "polls", "downloads", "connections"),
    [
        (1, 1, 4, 5),
        (2, 2, 4, 6),
        (64, 64, 64, 128),
        (512, 512, MAX_DOWNLOADS, 512 + MAX_DOWNLOADS),
    ],
)
def test_sizes_follow_concurrency(
    concurrency: int, polls: int, downloads: int, connections: int
) -> None:
    """One lookup and one connection per task in flight, downloads 4 to 64 on top."""
    sizes = RunOptions(concurrency=concurrency).sizes()
    assert (sizes.polls, sizes.downloads, sizes.connections) == (polls, downloads, connections)


def test_sizes_given_explicitly_win_and_connections_stay_bounded() -> None:
    """Explicit poll and download counts are used as given; connections never pass the cap."""
    sizes = pool_sizes(8, polls=3, downloads=2)
    assert (sizes.polls, sizes.downloads, sizes.connections) == (3, 2, 10)
    assert pool_sizes(512, polls=2000).connections == MAX_CONNECTIONS


async def test_the_rate_window_allows_rate_requests_in_any_second() -> None:
    """With a window of 5 per second, 12 requests take two full periods to all get through."""
    window = RateWindow(5)
    loop = asyncio.get_running_loop()
    started = loop.time()
    times: list[float] = []

    async def one() -> None:
        async with window:
            times.append(loop.time() - started)

    await asyncio.gather(*(one() for _ in range(12)))
    times.sort()
    assert times[4] < 0.5  # the first five at once
    assert times[5] >= 1.0 - 0.01  # the sixth a full second after the first answers
    assert times[10] >= 2.0 - 0.01
    for i in range(len(times) - 5):
        assert times[i + 5] - times[i] >= 1.0 - 0.01


async def test_a_closed_gate_turns_waiting_submitters_away() -> None:
    """Once every place is stranded and the gate closes, a waiting acquire gives up."""
    gate = InFlight(1)
    assert await gate.acquire()
    waiting = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    assert gate.strand()
    await gate.close()
    assert await asyncio.wait_for(waiting, timeout=5) is False
    assert gate.count == 1  # the stranded task still holds its place


async def test_places_go_to_waiters_in_turn_and_a_cancelled_waiter_passes_its_place_on() -> None:
    """Two places, five submitters: they get in first come first served; one cancelled just
    after it was handed a place gives it to the next, so no place is ever lost."""
    gate = InFlight(2)
    order: list[int] = []

    async def submitter(n: int) -> None:
        assert await gate.acquire()
        order.append(n)

    assert await gate.acquire()
    assert await gate.acquire()
    waiters = [asyncio.create_task(submitter(n)) for n in range(5)]
    await asyncio.sleep(0)
    await gate.release()  # handed to waiter 0 ...
    waiters[0].cancel()  # ... which is cancelled before it runs: waiter 1 gets the place
    await asyncio.sleep(0.01)
    assert order == [1]
    assert gate.count == 2
    for _ in range(3):
        await gate.release()
        await asyncio.sleep(0.01)
    assert order == [1, 2, 3, 4]
    assert gate.count == 2
