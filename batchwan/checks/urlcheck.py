"""``--check-urls``: a bounded, concurrent look at each remote image and audio file a sheet names.

Each distinct URL is fetched once, however many rows use it, with at most ``concurrency`` fetches
at a time. A body is read only up to the API's size limit plus one byte, so a huge or endless
file costs no more than that. What is read gets the same checks as a local file.

A stranger's sheet must not turn ``validate`` into a probe of your own network: loopback,
private, link-local and other non-public addresses are refused, whether a URL names them, its
host resolves to them, or a redirect leads there (redirects are followed one hop at a time, each
checked), unless ``allow_private`` (``--allow-private-urls``). The resolver the fetches use
refuses them too, so a host that answers differently the second time is still refused.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from dataclasses import replace
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp

from batchwan.checks.media import (
    MAX_AUDIO_BYTES,
    MAX_IMAGE_BYTES,
    MediaProblem,
    megabytes,
    probe_audio,
    probe_image,
)
from batchwan.provider.resolver import FilteringResolver, RefusedAddress
from batchwan.values import CheckedRow, RowIssue, Status

log = logging.getLogger(__name__)

_LIMITS = {"image": MAX_IMAGE_BYTES, "last_frame": MAX_IMAGE_BYTES, "audio_url": MAX_AUDIO_BYTES}
_TYPES = {"image": ("image/",), "last_frame": ("image/",), "audio_url": ("audio/",)}
_CHUNK = 64 * 1024
_MAX_REDIRECTS = 5
_REDIRECTS = (301, 302, 303, 307, 308)


def _is_public(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _public_only(address: str) -> str | None:
    """Why the resolver of the checks refuses ``address``: it is not public."""
    return None if _is_public(address) else f"resolves to {address}"


async def _private_target(url: str) -> str | None:
    """The non-public address a URL leads to, or None when every address is public."""
    host = urlsplit(url).hostname or ""
    try:
        ipaddress.ip_address(host)
        return None if _is_public(host) else host
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None)
    except OSError:
        return None  # the fetch itself reports a host that does not resolve
    for info in infos:
        address = str(info[4][0])
        if not _is_public(address):
            return address
    return None


def _refusal(url: str, detail: str) -> str:
    return (
        f"{url} {detail}, a loopback, private or link-local address; it is not fetched "
        "(pass --allow-private-urls if the sheet is yours and you mean it)"
    )


def _targets(rows: list[CheckedRow]) -> dict[tuple[str, str], list[int]]:
    """(field, url) -> indexes of the rows that name it, for URLs whose form is already valid."""
    targets: dict[tuple[str, str], list[int]] = {}
    for index, row in enumerate(rows):
        flagged = {issue.column for issue in row.issues}
        for field in _LIMITS:
            url = row.request.get(field)
            if (
                isinstance(url, str)
                and url.lower().startswith(("http://", "https://"))
                and field not in flagged
            ):
                targets.setdefault((field, url), []).append(index)
    return targets


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            break
    return b"".join(chunks)


async def _fetch_problems(
    session: aiohttp.ClientSession, field: str, url: str, allow_private: bool = False
) -> list[str]:
    """Every problem of one remote file, as messages; empty when the API would take it."""
    limit = _LIMITS[field]
    target = url
    for _hop in range(_MAX_REDIRECTS + 1):
        if not allow_private and (address := await _private_target(target)) is not None:
            via = f"redirects to {target}, which leads" if target != url else "leads"
            return [_refusal(url, f"{via} to {address}")]
        async with session.get(target, allow_redirects=False) as response:
            location = response.headers.get("Location")
            if response.status in _REDIRECTS and location:
                target = urljoin(target, location)
                continue
            return await _answer_problems(response, field, url, limit)
    return [f"{url} redirects more than {_MAX_REDIRECTS} times; link the file itself"]


async def _answer_problems(
    response: aiohttp.ClientResponse, field: str, url: str, limit: int
) -> list[str]:
    """The problems of one final answer: its status, type, size and content."""
    if response.status != 200:
        return [f"{url} answered HTTP {response.status}; the link must be public and direct"]
    kind = response.content_type or ""
    # Storage buckets often label every upload octet-stream; the content decides then.
    if kind and not kind.endswith("octet-stream") and not kind.startswith(_TYPES[field]):
        what = "audio" if field == "audio_url" else "an image"
        return [f"{url} is {kind}, not {what}; link the file itself"]
    if response.content_length is not None and response.content_length > limit:
        size = response.content_length
        return [f"{url} is {megabytes(size)}; must be at most {megabytes(limit)}"]
    data = await _read_capped(response, limit)
    if len(data) > limit:
        return [f"{url} is over {megabytes(limit)}; must be at most {megabytes(limit)}"]
    problems: tuple[MediaProblem, ...]
    audio = field == "audio_url"
    problems = probe_audio(data).problems if audio else probe_image(data).problems
    # The provider fetches a URL itself, so --fix-images cannot mend a remote file.
    return [p.message.replace(", or run with --fix-images)", ")") for p in problems]


async def _check_one(
    session: aiohttp.ClientSession,
    gate: asyncio.Semaphore,
    field: str,
    url: str,
    allow_private: bool,
) -> list[str]:
    async with gate:
        try:
            return await _fetch_problems(session, field, url, allow_private)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            cause = getattr(exc, "os_error", None) or exc.__cause__
            if isinstance(cause, RefusedAddress):
                return [_refusal(url, f"leads to a host that {cause}")]
            reason = str(exc) or type(exc).__name__
            return [f"{url} could not be fetched ({reason}); check the link"]


# The timeout bounds each fetch, not the call, and callers rely on this signature.
async def check_urls(
    rows: list[CheckedRow],
    *,
    concurrency: int = 8,
    timeout: float = 10.0,  # noqa: ASYNC109
    allow_private: bool = False,
) -> list[CheckedRow]:
    """Fetch each remote image and audio URL once; return the rows with any problems added.

    ``allow_private``: also fetch loopback, private and link-local addresses.
    """
    targets = _targets(rows)
    if not targets:
        return list(rows)
    gate = asyncio.Semaphore(max(1, concurrency))
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    options: dict[str, Any] = {"limit": max(1, concurrency)}
    if not allow_private:
        options["resolver"] = FilteringResolver(_public_only)
    connector = aiohttp.TCPConnector(**options)
    async with aiohttp.ClientSession(timeout=client_timeout, connector=connector) as session:
        keys = list(targets)
        results = await asyncio.gather(
            *(_check_one(session, gate, f, u, allow_private) for f, u in keys)
        )
    added: dict[int, list[RowIssue]] = {}
    for (field, _url), messages in zip(keys, results, strict=True):
        for index in targets[(field, _url)]:
            position, line = rows[index].position, rows[index].line
            added.setdefault(index, []).extend(
                RowIssue(position, field, m, line=line) for m in messages
            )
    log.info("checked %d URLs", len(keys))
    out: list[CheckedRow] = []
    for index, row in enumerate(rows):
        issues = added.get(index)
        if issues:
            # A row with a broken file is invalid, so "duplicate of row N" no longer applies.
            merged = tuple(i for i in row.issues if i.column) + tuple(issues)
            row = replace(row, status=Status.INVALID, issues=merged)
        out.append(row)
    return out
