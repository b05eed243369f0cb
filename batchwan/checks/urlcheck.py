"""``--check-urls``: a bounded, concurrent look at each remote image and audio file a sheet names.

Each distinct URL is fetched once, however many rows use it, with at most ``concurrency`` fetches
at a time. A body is read only up to the API's size limit plus one byte, so a huge or endless
file costs no more than that. What is read gets the same checks as a local file.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

import aiohttp

from batchwan.checks.media import (
    MAX_AUDIO_BYTES,
    MAX_IMAGE_BYTES,
    MediaProblem,
    megabytes,
    probe_audio,
    probe_image,
)
from batchwan.values import CheckedRow, RowIssue, Status

log = logging.getLogger(__name__)

_LIMITS = {"image": MAX_IMAGE_BYTES, "audio_url": MAX_AUDIO_BYTES}
_TYPES = {"image": ("image/",), "audio_url": ("audio/",)}
_CHUNK = 64 * 1024


def _targets(rows: list[CheckedRow]) -> dict[tuple[str, str], list[int]]:
    """(field, url) -> indexes of the rows that name it, for URLs whose form is already valid."""
    targets: dict[tuple[str, str], list[int]] = {}
    for index, row in enumerate(rows):
        flagged = {issue.column for issue in row.issues}
        for field in ("image", "audio_url"):
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


async def _fetch_problems(session: aiohttp.ClientSession, field: str, url: str) -> list[str]:
    """Every problem of one remote file, as messages; empty when the API would take it."""
    limit = _LIMITS[field]
    async with session.get(url) as response:
        if response.status != 200:
            return [f"{url} answered HTTP {response.status}; the link must be public and direct"]
        kind = response.content_type or ""
        # Storage buckets often label every upload octet-stream; the content decides then.
        if kind and not kind.endswith("octet-stream") and not kind.startswith(_TYPES[field]):
            what = "an image" if field == "image" else "audio"
            return [f"{url} is {kind}, not {what}; link the file itself"]
        if response.content_length is not None and response.content_length > limit:
            size = response.content_length
            return [f"{url} is {megabytes(size)}; must be at most {megabytes(limit)}"]
        data = await _read_capped(response, limit)
    if len(data) > limit:
        return [f"{url} is over {megabytes(limit)}; must be at most {megabytes(limit)}"]
    problems: tuple[MediaProblem, ...]
    problems = probe_image(data).problems if field == "image" else probe_audio(data).problems
    # The provider fetches a URL itself, so --fix-images cannot mend a remote file.
    return [p.message.replace(", or run with --fix-images)", ")") for p in problems]


async def _check_one(
    session: aiohttp.ClientSession, gate: asyncio.Semaphore, field: str, url: str
) -> list[str]:
    async with gate:
        try:
            return await _fetch_problems(session, field, url)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            reason = str(exc) or type(exc).__name__
            return [f"{url} could not be fetched ({reason}); check the link"]


# The timeout bounds each fetch, not the call, and callers rely on this signature.
async def check_urls(
    rows: list[CheckedRow],
    *,
    concurrency: int = 8,
    timeout: float = 10.0,  # noqa: ASYNC109
) -> list[CheckedRow]:
    """Fetch each remote image and audio URL once; return the rows with any problems added."""
    targets = _targets(rows)
    if not targets:
        return list(rows)
    gate = asyncio.Semaphore(max(1, concurrency))
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    connector = aiohttp.TCPConnector(limit=max(1, concurrency))
    async with aiohttp.ClientSession(timeout=client_timeout, connector=connector) as session:
        keys = list(targets)
        results = await asyncio.gather(*(_check_one(session, gate, f, u) for f, u in keys))
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
