"""A resolver for aiohttp's connections that drops the addresses a rule refuses.

A check that looks a host name up before fetching cannot see what aiohttp's own lookup answers
a moment later, when it connects: a name that answers differently the second time (DNS
rebinding) would lead there. With this resolver in the session, that second lookup is the one
filtered, so no connection reaches a refused address.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver


class RefusedAddress(OSError):
    """A host name resolved only to addresses that are refused; the text says why."""


class FilteringResolver(AbstractResolver):
    """aiohttp's default lookups, keeping only the addresses ``refusal`` has nothing against.

    ``refusal(address)`` says why an address is refused, or None. The ``trusted`` host (the
    provider's own) is resolved as it is: the provider is wherever its base URL says.
    """

    def __init__(
        self,
        refusal: Callable[[str], str | None],
        *,
        trusted: str | None = None,
        inner: AbstractResolver | None = None,
    ) -> None:
        self._refusal = refusal
        self._trusted = (trusted or "").lower()
        self._inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The host's allowed addresses; RefusedAddress when it has none."""
        found = await self._inner.resolve(host, port, family)
        if self._trusted and host.lower() == self._trusted:
            return found
        kept: list[ResolveResult] = []
        reason = "it resolves to no address"
        for result in found:
            refusal = self._refusal(result["host"])
            if refusal is None:
                kept.append(result)
            else:
                reason = refusal
        if not kept:
            raise RefusedAddress(reason)
        return kept

    async def close(self) -> None:
        """Close the resolver it wraps."""
        await self._inner.close()
