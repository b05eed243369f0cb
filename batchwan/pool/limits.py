"""The limits the provider imposes, as objects the workers wait on (never bare sleeps)."""

from __future__ import annotations

import asyncio
import math
import random
from collections import deque
from dataclasses import dataclass


class InFlight:
    """Counts tasks at the provider (submitted, not finished); new ones wait below the cap.

    A task past its deadline may still run at the provider, so it keeps its place until the
    run ends (``strand``); when every place is held so, no place will come back and ``close``
    turns the waiting submitters away.
    """

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.count = 0
        self.stranded = 0
        self._closed = False
        # Submitters waiting for a place, first come first served; each is handed its place
        # (True) or turned away (False) by name, so a release wakes one waiter, not all.
        self._waiters: deque[asyncio.Future[bool]] = deque()

    async def acquire(self) -> bool:
        """Wait for room, then take a place; False (nothing taken) once the gate is closed."""
        if self._closed:
            return False
        if self.count < self.limit and not self._waiters:
            self.count += 1
            return True
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.result():
                self.count -= 1  # handed a place it will never use: pass it on
                self._hand_over()
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    def take(self) -> None:
        """Take a place without waiting: a task found running when the run starts."""
        self.count += 1

    async def release(self) -> None:
        """Give a place back: the task finished, or its create was not accepted."""
        self.count = max(0, self.count - 1)
        self._hand_over()

    def _hand_over(self) -> None:
        while self._waiters and self.count < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.count += 1
                waiter.set_result(True)

    def strand(self) -> bool:
        """A task stopped being followed but may still run: its place stays taken.

        True when every place is now held by such tasks.
        """
        self.stranded += 1
        return self.stranded >= self.limit

    async def close(self) -> None:
        """Turn away every submitter waiting for room, now and later."""
        self._closed = True
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(False)


class RateWindow:
    """At most ``rate`` requests in any one-second window, also in the first second.

    Each of the ``permits`` is handed back one second after its request was answered, so two
    requests on the same permit reach the provider at least a second apart whatever the network
    delays: no burst above the rate even as the provider measures it. A fractional rate below one
    becomes one request per ``1 / rate`` seconds.
    """

    #: Permits due back are handed back together, at most this late (never early).
    GRAIN = 0.005

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.permits = max(1, math.floor(rate))
        self.period = max(1.0, self.permits / rate)
        self._semaphore = asyncio.Semaphore(self.permits)
        # When each answered permit is due back, oldest first (the period is fixed, so the
        # order is the answers' order), and the one timer that hands them back: a timer per
        # request would keep thousands in the loop's heap at a high rate.
        self._due: deque[float] = deque()
        self._timer: asyncio.TimerHandle | None = None

    async def acquire(self) -> None:
        """Wait for a permit to send one create."""
        await self._semaphore.acquire()

    def release_later(self) -> None:
        """The request was answered (or failed): its permit returns after the period."""
        loop = asyncio.get_running_loop()
        self._due.append(loop.time() + self.period)
        if self._timer is None:
            self._timer = loop.call_at(self._due[0], self._hand_back, loop)

    def _hand_back(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        while self._due and self._due[0] <= now:
            self._due.popleft()
            self._semaphore.release()
        self._timer = (
            loop.call_at(max(self._due[0], now + self.GRAIN), self._hand_back, loop)
            if self._due
            else None
        )

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        self.release_later()


#: The window on create requests (the name the runner and its tests know).
CreateWindow = RateWindow

#: Downloads at once follow --concurrency up to this: beyond it the disk, not the network,
#: is what they wait on, and each open download holds a socket and a file.
MAX_DOWNLOADS = 64
#: A polite ceiling on connections, far below the usual 1024 open files of a process.
MAX_CONNECTIONS = 640


@dataclass(frozen=True)
class PoolSizes:
    """How many lookups, downloads and connections may be open at once."""

    polls: int
    downloads: int
    connections: int


def pool_sizes(
    concurrency: int, *, polls: int | None = None, downloads: int | None = None
) -> PoolSizes:
    """Sizes that follow the run's --concurrency, so more tasks in flight get more sockets.

    Every task in flight holds at most one create or one lookup open, so ``concurrency``
    lookups and connections for them never make a task wait on the pool; downloads hold no
    place in flight and get their own connections on top.
    """
    polls = max(1, polls or concurrency)
    downloads = max(1, downloads or min(MAX_DOWNLOADS, max(4, concurrency)))
    connections = min(MAX_CONNECTIONS, max(polls, concurrency) + downloads)
    return PoolSizes(polls=polls, downloads=downloads, connections=connections)


class SharedPause:
    """A pause every worker honours after a 429, so one refusal slows the whole pool."""

    def __init__(self) -> None:
        self._until = 0.0

    def extend(self, seconds: float) -> None:
        """Pause all create requests for at least ``seconds`` from now."""
        loop = asyncio.get_running_loop()
        self._until = max(self._until, loop.time() + seconds)

    async def wait(self) -> None:
        """Return once no pause is in force."""
        loop = asyncio.get_running_loop()
        # The deadline may move while we sleep (another 429), so look again after each sleep.
        while (remaining := self._until - loop.time()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(remaining)


def backoff(attempt: int, *, base: float, cap: float) -> float:
    """Exponential back-off with full jitter: a random delay up to base * 2**attempt, capped."""
    return random.uniform(0, min(cap, base * 2**attempt))
