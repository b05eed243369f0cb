"""Fetching the videos: checked links, no key, a deadline, a size cap, and MP4s only.

A video link comes from the server, so it is checked like any other value from there: http or
https with a host, and no private, loopback or link-local address (a link to 169.254.169.254 would
make batchwan fetch the cloud's metadata and store it in the run folder) unless the base URL
itself is such an address, as the simulator's is. Redirects are followed by hand so that each hop
is checked too. The file must start like an MP4 (an ``ftyp`` box): an HTML page answered with 200
is not a video.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import ipaddress
import logging
import os
import socket
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver

from batchwan.errors import ApiError, DiskFull, VideoRefused
from batchwan.provider.base import Provider, clean_text
from batchwan.provider.finisher import FileFinisher
from batchwan.provider.resolver import FilteringResolver, RefusedAddress
from batchwan.provider.transport import MB, Limits, read_capped, transport_error

_log = logging.getLogger(__name__)

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_BUFFER = 1 << 22  # bytes held in memory between writes
_CHUNK = 1 << 18
_REDIRECTS = 5
_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})


def address_kind(address: IpAddress) -> str | None:
    """``loopback``, ``link-local``, ``private`` or ``reserved``; None for a public address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_private:
        return "private"
    if address.is_multicast or address.is_reserved or address.is_unspecified:
        return "reserved"
    return None


@functools.lru_cache(maxsize=1024)
def _literal(host: str) -> IpAddress | None:
    # A run's videos come from a few hosts: each is parsed once, not once per video.
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return None


class AddressPolicy:
    """Which kinds of address a video may come from: public ones, and the base URL's own kind."""

    def __init__(self, base_url: str) -> None:
        host = urlsplit(base_url).hostname or ""
        literal = _literal(host)
        kind = address_kind(literal) if literal is not None else None
        if host == "localhost":
            kind = "loopback"
        self.allowed: frozenset[str] = frozenset({kind} if kind else ())
        self._hosts: dict[str, str | None] = {}  # a run's videos come from a few hosts

    def host_refusal(self, host: str) -> str | None:
        """Why a URL's literal address ``host`` is refused; None when allowed or a name."""
        if host not in self._hosts:
            if len(self._hosts) > 1024:
                self._hosts.clear()
            literal = _literal(host)
            self._hosts[host] = self.refusal(literal) if literal is not None else None
        return self._hosts[host]

    def refusal(self, address: IpAddress) -> str | None:
        """Why ``address`` is refused, or None when it is allowed."""
        kind = address_kind(address)
        if kind is None or kind in self.allowed:
            return None
        return f"it points at a {kind} address ({address})"


def policy_resolver(base_url: str, inner: AbstractResolver | None = None) -> FilteringResolver:
    """The resolver of a run's session: addresses that ``AddressPolicy(base_url)`` refuses are
    dropped when connecting (see ``provider.resolver``); the base URL's own host resolves as is."""
    policy = AddressPolicy(base_url)

    def refusal(host: str) -> str | None:
        address = _literal(host)
        return policy.refusal(address) if address is not None else f"it resolves to {host!r}"

    return FilteringResolver(refusal, trusted=urlsplit(base_url).hostname, inner=inner)


def checked_host(url: str, policy: AddressPolicy) -> str:
    """The host of ``url`` when it is a link a video may be fetched from; VideoRefused if not."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises on a port that is not a number
    except ValueError as exc:
        raise _refused(url, f"it is not a valid URL ({clean_text(exc, 100)})") from exc
    if parts.scheme not in ("http", "https"):
        raise _refused(url, "only http and https links are fetched")
    if not host:
        raise _refused(url, "it has no host")
    try:
        host.encode("idna")  # what a lookup would do; a label over 63 characters fails it
    except UnicodeError as exc:
        raise _refused(url, "it is not a valid URL (bad host name)") from exc
    if reason := policy.host_refusal(host):
        raise _refused(url, reason)
    return host


def loggable_url(url: str) -> str:
    """``url`` without its query (signed asset URLs carry their credentials there), cleaned."""
    try:
        parts = urlsplit(url)
        shown = f"{parts.scheme}://{parts.netloc}{parts.path}"
    except ValueError:
        shown = url.split("?", 1)[0]
    return clean_text(shown, 200)


def _refused(url: str, reason: str) -> VideoRefused:
    # The link is made loggable only here: most videos are never refused.
    shown = loggable_url(url)
    return VideoRefused(f"video link {shown} refused: {reason}", detail=reason, safe_to_resend=True)


class Downloader:
    """Streams one video at a time into the run folder, within the limits."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        provider: Provider,
        limits: Limits,
        policy: AddressPolicy,
    ) -> None:
        self._session = session
        self._provider = provider
        self._limits = limits
        self._policy = policy
        self._timeout = limits.timeout()
        self._finisher = FileFinisher()

    async def download(self, url: str, dest: Path, *, sync_folder: bool = True) -> int:
        """Fetch ``url`` into ``dest`` (via ``dest.part``, fsynced, renamed); return its bytes.

        The API key is never sent here: output URLs may point at a third-party asset host.
        With ``sync_folder=False`` the caller makes the rename durable itself (one folder fsync
        can cover many files).
        """
        part = dest.with_name(dest.name + ".part")
        seconds = self._limits.download_deadline
        deadline = asyncio.timeout(seconds)
        try:
            async with deadline:
                size = await self._follow(url, _PartFile(part, dest, sync_folder))
        except (aiohttp.ClientError, TimeoutError) as exc:
            shown = loggable_url(url)
            _log.debug("GET %s -> %s", shown, type(exc).__name__)
            await asyncio.to_thread(_remove, part)
            expired = seconds if deadline.expired() else None
            raise transport_error("download", exc, shown, expired_after=expired) from exc
        except OSError as exc:
            await asyncio.to_thread(_remove, part)
            if exc.errno == errno.ENOSPC:
                raise DiskFull(f"the disk is full: could not save the video to {dest}") from exc
            raise
        except BaseException:
            await asyncio.to_thread(_remove, part)
            raise
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug("GET %s -> %d bytes", loggable_url(url), size)
        return size

    async def _follow(self, url: str, part: _PartFile) -> int:
        for _ in range(_REDIRECTS + 1):
            await self._check_host(checked_host(url, self._policy), url)
            try:
                async with self._session.get(
                    url, timeout=self._timeout, allow_redirects=False
                ) as resp:
                    location = resp.headers.get("Location")
                    if resp.status in _REDIRECT_CODES and location:
                        url = urljoin(url, location)
                        continue
                    if resp.status != 200:
                        raw, _ = await read_capped(resp, 64 * 1024)
                        raise self._refusal(resp.status, raw, resp.headers, url)
                    return await self._stream(resp, part, url)
            except aiohttp.ClientConnectorDNSError as exc:  # the session's resolver said no
                if isinstance(exc.os_error, RefusedAddress):
                    raise _refused(url, str(exc.os_error)) from exc
                raise
        raise _refused(url, f"more than {_REDIRECTS} redirects")

    def _refusal(self, status: int, raw: bytes, headers: Any, url: str) -> ApiError:
        return self._provider.classify(
            "download", status, raw, headers, task_id=None, where=loggable_url(url)
        )

    async def _check_host(self, host: str, url: str) -> None:
        """Refuse a host name that resolves to a refused address (e.g. an internal name).

        aiohttp looks the name up again when it connects; a name that answers differently a
        moment later (DNS rebinding) is caught there, by the run's session's ``policy_resolver``.
        """
        if _literal(host) is not None:
            return
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, None, type=socket.SOCK_STREAM
            )
        except OSError:
            return  # aiohttp reports the failure to resolve, as for any other host
        for info in infos:
            address = _literal(str(info[4][0]))
            if address is not None and (reason := self._policy.refusal(address)):
                raise _refused(url, reason)

    async def _stream(self, resp: aiohttp.ClientResponse, file: _PartFile, url: str) -> int:
        cap = self._limits.max_video_bytes
        too_big = f"it is larger than the {cap / MB:g} MB limit (see --max-video-mb)"
        if resp.content_length is not None and resp.content_length > cap:
            raise _refused(url, too_big)
        # Chunks are gathered in memory and written a few MB at a time, so a short video costs
        # one trip to the finisher's thread (write, fsync, close, rename), shared with the
        # videos that end at the same time, instead of one thread hop per chunk.
        buffered: list[bytes] = []
        held = size = 0
        head = b""
        try:
            async for chunk in resp.content.iter_chunked(_CHUNK):
                if len(head) < 8:  # an MP4 starts with its ftyp box
                    head = (head + chunk)[:32]
                    if len(head) >= 8 and head[4:8] != b"ftyp":
                        raise _refused(url, _not_mp4(head))
                size += len(chunk)
                if size > cap:
                    raise _refused(url, too_big)
                buffered.append(chunk)
                held += len(chunk)
                if held >= _BUFFER:
                    await asyncio.to_thread(file.write, buffered)
                    buffered, held = [], 0
            if len(head) < 8:
                raise _refused(url, _not_mp4(head))
            await self._finisher.finish(file, buffered)
        finally:
            if not file.closed:
                await asyncio.to_thread(file.close)
        return size


class _PartFile:
    """A download's ``.part`` file, opened on first write; finished by fsync and rename."""

    def __init__(self, part: Path, dest: Path, sync_folder: bool) -> None:
        self.part = part
        self.dest = dest
        self.sync_folder = sync_folder
        self._handle: BinaryIO | None = None
        self.closed = False

    def write(self, chunks: list[bytes]) -> None:
        """Append chunks (the file is created on the first write)."""
        if self._handle is None:
            self._handle = open_part(self.part)
        self._handle.writelines(chunks)

    def sync(self) -> None:
        """Make the content durable (after the last ``write``)."""
        assert self._handle is not None  # the finisher writes before it syncs
        _flush_and_sync(self._handle)

    def publish(self) -> None:
        """Close the durable file and give it its real name (a durable one with sync_folder)."""
        self.close()
        os.replace(self.part, self.dest)
        if self.sync_folder:
            _fsync_dir(self.dest.parent)

    def close(self) -> None:
        """Close the file (also after a failure; the caller removes the part)."""
        if self._handle is not None:
            self._handle.close()
        self.closed = True


def _not_mp4(head: bytes) -> str:
    if not head:
        return "the host sent an empty file, not an MP4 video"
    start = clean_text(head.decode("latin-1"), 20)
    return f"the host sent something that is not an MP4 video (it starts {start!r})"


def open_part(path: Path) -> BinaryIO:
    """The ``.part`` file a video is streamed into."""
    return path.open("wb")


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)


def _flush_and_sync(handle: BinaryIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open a folder; the rename is still atomic
        return
    with contextlib.suppress(OSError):
        os.fsync(fd)
    os.close(fd)
