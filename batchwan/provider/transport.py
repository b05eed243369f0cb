"""The thin HTTP layer under every provider: one session, the key, timeouts, deadlines, caps.

A server can answer slowly on purpose (one byte every few seconds never trips a read timeout),
or answer without end. So every call has a total deadline on top of the read timeout, and every
answer is read only up to a cap. The key goes only to the base URL's host: calls take paths, not
URLs, and never follow a redirect.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver
from multidict import CIMultiDictProxy

from batchwan import __version__
from batchwan.errors import InputError, TransportError
from batchwan.provider.base import Operation, Request, clean_text

_log = logging.getLogger(__name__)

MB = 1 << 20


@dataclass(frozen=True)
class Limits:
    """How long a call may take and how much a server may send (see the README's Safety)."""

    connect_timeout: float = 30.0  # seconds to open a connection
    read_timeout: float = 60.0  # seconds without a byte
    create_deadline: float = 120.0  # seconds for a whole create, sent to answered
    poll_deadline: float = 60.0  # seconds for a whole status lookup
    download_deadline: float = 1800.0  # seconds for a whole video
    max_answer_bytes: int = 1 * MB  # an API answer (JSON) larger than this is refused
    max_video_bytes: int = 2048 * MB  # a video larger than this is refused

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not value > 0:
                raise ValueError(f"{name} must be positive, got {value!r}")

    def deadline(self, op: Operation) -> float:
        """The total deadline of one ``op``."""
        return {
            "create": self.create_deadline,
            "get": self.poll_deadline,
            "download": self.download_deadline,
        }[op]

    def timeout(self, op: Operation | None = None) -> aiohttp.ClientTimeout:
        """The per-read timeouts; the total deadline is kept by the caller (``Transport.call``).

        A call whose whole deadline is no longer than the read timeout needs no read timer of
        its own (aiohttp would set one again for every chunk it reads).
        """
        needs_read = op is None or self.deadline(op) > self.read_timeout
        return aiohttp.ClientTimeout(
            total=None,
            connect=self.connect_timeout,
            sock_connect=self.connect_timeout,
            sock_read=self.read_timeout if needs_read else None,
        )


def open_session(
    *,
    limit: int = 32,
    limit_per_host: int = 16,
    resolver: AbstractResolver | None = None,
) -> aiohttp.ClientSession:
    """One session for a whole run: bounded connection pool, no proxies from the environment.

    Call it inside the running event loop and close it (``async with``) at the end. A run
    passes a ``downloads.policy_resolver``, so no connection reaches an address it refuses (the
    caller closes it: the connector closes only a resolver of its own).
    """
    connector = aiohttp.TCPConnector(
        resolver=resolver,
        limit=limit,
        limit_per_host=limit_per_host,
        ttl_dns_cache=300,
        # Reusing a connection the server has just closed turns a create into "may exist";
        # staying under the shortest common server idle timeout (5 s) avoids that race.
        keepalive_timeout=4.0,
    )
    return aiohttp.ClientSession(
        connector=connector,
        # Each call sets its own timeouts; this only guards callers that bypass Transport.
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=120),
        headers={"User-Agent": f"batchwan/{__version__}"},
        raise_for_status=False,
        trust_env=False,
    )


@dataclass(frozen=True)
class Answer:
    """What came back: status, headers, and the body up to the cap."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    cut: bool  # the body was longer than the cap and was not read to its end


async def read_capped(resp: aiohttp.ClientResponse, cap: int) -> tuple[bytes, bool]:
    """The body up to ``cap`` bytes, and whether there was more (the rest is never read)."""
    if resp.content_length is not None:  # the body cannot run past its stated length
        return (b"", True) if resp.content_length > cap else (await resp.read(), False)
    buffer = bytearray()
    async for chunk in resp.content.iter_chunked(64 * 1024):
        buffer += chunk
        if len(buffer) > cap:
            return bytes(buffer[:cap]), True
    return bytes(buffer), False


class Transport:
    """Sends a provider's requests to its base URL, with the key, within the limits."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        api_key: str | None,
        limits: Limits,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InputError(f"base URL {base_url!r} is not an http(s) URL with a host name")
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.limits = limits
        self._api_key = api_key or None
        self._auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        ops: tuple[Operation, ...] = ("create", "get", "download")
        self._timeouts = {op: limits.timeout(op) for op in ops}
        self._deadlines = {op: limits.deadline(op) for op in ops}

    @property
    def has_key(self) -> bool:
        """Whether a key is sent."""
        return self._api_key is not None

    async def call(self, op: Operation, request: Request) -> Answer:
        """Send one request; raise ``TransportError`` when no answer came in time."""
        headers = {"Accept": "application/json", **request.headers, **self._auth}
        seconds = self._deadlines[op]
        # The total deadline: aiohttp's own timeouts cover only each connect and read.
        deadline = asyncio.timeout(seconds)
        try:
            async with (
                deadline,
                self.session.request(
                    request.method,
                    self.base_url + request.path,
                    json=request.json,
                    headers=headers,
                    timeout=self._timeouts[op],
                    allow_redirects=False,  # keeps the key on the base URL's host
                ) as resp,
            ):
                body, cut = await read_capped(resp, self.limits.max_answer_bytes)
                return Answer(resp.status, resp.headers, body, cut)
        except (aiohttp.ClientError, TimeoutError) as exc:
            _log.debug("%s %s -> %s", request.method, request.path, type(exc).__name__)
            expired = seconds if deadline.expired() else None
            raise transport_error(op, exc, request.path, expired_after=expired) from exc

    def scrub(self, text: str) -> str:
        """``text`` without the key: a provider that echoes the request must not leak it."""
        if self._api_key and self._api_key in text:
            return text.replace(self._api_key, "***")
        return text


def transport_error(
    op: Operation, exc: BaseException, where: str, *, expired_after: float | None = None
) -> TransportError:
    """Map an aiohttp or timeout failure; a create is safe only if it never connected.

    ``expired_after``: the seconds of the call's total deadline when that deadline, not a read
    timeout, ended it.
    """
    never_sent = isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError)
    safe = op != "create" or never_sent
    if expired_after is not None:
        what = f"gave up after the {expired_after:g} s deadline waiting for the answer from"
    elif isinstance(exc, aiohttp.ConnectionTimeoutError):
        what = "timed out connecting to"
    elif isinstance(exc, aiohttp.ClientConnectorDNSError):
        what = "could not resolve the host of"
    elif isinstance(exc, aiohttp.ClientConnectorError):
        what = "could not connect to"
    elif isinstance(exc, TimeoutError):
        what = "timed out waiting for the answer from"
    elif isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientConnectionResetError):
        what = "lost the connection before an answer from"
    elif isinstance(exc, aiohttp.ClientPayloadError):
        what = "got a cut-off answer from"
    else:
        what = "failed talking to"
    tail = "; the task may exist" if op == "create" and not safe else ""
    reason = clean_text(str(exc) or type(exc).__name__, 200)
    return TransportError(
        f"{op}: {what} {where}{tail} ({reason})", detail=reason, safe_to_resend=safe
    )
