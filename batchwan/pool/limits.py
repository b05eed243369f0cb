"""The limits the provider imposes, as objects the workers wait on (never bare sleeps)."""

from __future__ import annotations

import asyncio
import math
import random


class InFlight:
    """Counts tasks at the provider (submitted, not finished); new ones wait below the cap."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.count = 0
        self._changed = asyncio.Condition()

    async def acquire(self) -> None:
        """Wait for room, then take a place."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.count < self.limit)
            self.count += 1

    def take(self) -> None:
        """Take a place without waiting: a task found running when the run starts."""
        self.count += 1

    async def release(self) -> None:
        """Give a place back: the task finished, or its create was not accepted."""
        async with self._changed:
            self.count = max(0, self.count - 1)
            self._changed.notify()


class CreateWindow:
    """At most ``rate`` create requests in any one-second window, also in the first second.

    Each of the ``permits`` is handed back one second after its request was answered, so two
    requests on the same permit reach the provider at least a second apart whatever the network
    delays: no burst above the rate even as the provider measures it. A fractional rate below one
    becomes one request per ``1 / rate`` seconds.
    """

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.permits = max(1, math.floor(rate))
        self.period = max(1.0, self.permits / rate)
        self._semaphore = asyncio.Semaphore(self.permits)

    async def acquire(self) -> None:
        """Wait for a permit to send one create."""
        await self._semaphore.acquire()

    def release_later(self) -> None:
        """The request was answered (or failed): its permit returns after the period."""
        asyncio.get_running_loop().call_later(self.period, self._semaphore.release)


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
