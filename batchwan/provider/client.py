"""The only module that speaks HTTP to the provider.

One attempt per call: retrying is the runner's job. Every failure becomes an ``ApiError`` from
``batchwan.errors`` whose ``safe_to_resend`` says whether the provider surely did not act on the
request. Reads (``get``, ``download``) are always safe to repeat. A create is safe to resend only
when it surely was not accepted: 429, 503, a connection that never opened. Anything after the
request left this machine (a timeout while waiting, a dropped connection, 500/502/504, a 2xx that
cannot be read) may have created a task, so it is not.

``AccountError`` is safe to resend too (the provider refused it), but it means every later call
will fail the same way: check for it before looking at ``safe_to_resend``.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import math
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp

from batchwan import __version__
from batchwan.errors import (
    AccountError,
    ApiError,
    InputError,
    RateLimited,
    Rejected,
    ServerError,
    TaskNotFound,
    TransportError,
)
from batchwan.values import DEFAULT_MODEL, ProviderError, TaskInfo, TaskState

_log = logging.getLogger(__name__)

Operation = Literal["create", "get", "download"]

_IN_PROGRESS = frozenset({"pending", "queued", "running", "processing", "retrying"})
_SUCCEEDED = frozenset({"completed", "succeeded"})
_FAILED = frozenset({"failed"})
_DETAIL_LIMIT = 300
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_DOWNLOAD_CHUNK = 1 << 18
_DOWNLOAD_BUFFER = 1 << 22  # bytes held in memory between writes


def open_session(*, limit: int = 32, limit_per_host: int = 16) -> aiohttp.ClientSession:
    """One session for a whole run: bounded connection pool, no proxies from the environment.

    Call it inside the running event loop and close it (``async with``) at the end.
    """
    connector = aiohttp.TCPConnector(
        limit=limit,
        limit_per_host=limit_per_host,
        ttl_dns_cache=300,
        # Reusing a connection the server has just closed turns a create into "may exist";
        # staying under the shortest common server idle timeout (5 s) avoids that race.
        keepalive_timeout=4.0,
    )
    return aiohttp.ClientSession(
        connector=connector,
        # Each call sets its own timeouts; this only guards callers that bypass Client.
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=120),
        headers={"User-Agent": f"batchwan/{__version__}"},
        raise_for_status=False,
        trust_env=False,
    )


class Client:
    """One provider API endpoint set, over one aiohttp session for the whole run."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        api_key: str | None,
        model: str = DEFAULT_MODEL,
        timeout: float = 60.0,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InputError(f"base URL {base_url!r} is not an http(s) URL with a host name")
        if not model or "/" in model:
            raise InputError(f"model name {model!r} is not usable in a URL path")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key or None
        self._model = model
        self._timeout = timeout
        self._generation_path = f"/vendors/alibaba/v1/{model}/generation"
        # No total deadline: it cannot tell "never connected" from "sent, then waited".
        self._api_timeout = aiohttp.ClientTimeout(
            total=None, connect=timeout, sock_connect=timeout, sock_read=timeout
        )

    def __repr__(self) -> str:
        key = "set" if self._api_key else "none"
        return f"Client(base_url={self._base_url!r}, model={self._model!r}, api_key={key})"

    @property
    def base_url(self) -> str:
        """The provider's base URL, without a trailing slash."""
        return self._base_url

    @property
    def model(self) -> str:
        """The model whose endpoints this client calls."""
        return self._model

    async def create(self, body: Mapping[str, Any]) -> TaskInfo:
        """Submit one generation; the answer's task id must be recorded at once."""
        return await self._call_api("create", "POST", self._generation_path, dict(body), None)

    async def get(self, task_id: str) -> TaskInfo:
        """Look up one task's state, videos and error."""
        if not task_id or "/" in task_id:
            raise ValueError(f"not a task id: {task_id!r}")
        path = f"{self._generation_path}/{task_id}"
        return await self._call_api("get", "GET", path, None, task_id)

    async def download(self, url: str, dest: Path, *, sync_folder: bool = True) -> int:
        """Stream ``url`` into ``dest`` (via ``dest.part``, fsynced, renamed); return its bytes.

        The API key is never sent here: output URLs may point at a third-party asset host.
        With ``sync_folder=False`` the caller makes the rename durable itself (one folder fsync
        can cover many files).
        """
        part = dest.with_name(dest.name + ".part")
        shown = _loggable_url(url)
        started = asyncio.get_running_loop().time()
        try:
            size, status, trace_id, raw = await self._stream_to(url, part)
        except (aiohttp.ClientError, TimeoutError) as exc:
            _log.debug("GET %s -> %s", shown, type(exc).__name__)
            await asyncio.to_thread(_remove, part)
            raise _transport_error("download", exc, shown) from exc
        except BaseException:
            await asyncio.to_thread(_remove, part)
            raise
        _log.debug(
            "GET %s -> %s (%d bytes, %.3f s, trace %s)",
            shown,
            status,
            size,
            asyncio.get_running_loop().time() - started,
            trace_id or "-",
        )
        if status != 200:
            raise self._status_error("download", status, raw, None, trace_id, None, shown)
        if sync_folder:
            await asyncio.to_thread(_fsync_dir, dest.parent)
        return size

    async def _stream_to(self, url: str, part: Path) -> tuple[int, int, str | None, bytes]:
        async with self._session.get(url, timeout=self._api_timeout) as resp:
            trace_id = _trace_id(resp.headers)
            if resp.status != 200:
                return 0, resp.status, trace_id, await resp.read()
            # Chunks are gathered in memory and written a few MB at a time, so a short video
            # costs one thread hop (write, fsync, close, rename) instead of one per chunk.
            file = _PartFile(part)
            buffered: list[bytes] = []
            held = size = 0
            try:
                async for chunk in resp.content.iter_chunked(_DOWNLOAD_CHUNK):
                    buffered.append(chunk)
                    held += len(chunk)
                    size += len(chunk)
                    if held >= _DOWNLOAD_BUFFER:
                        await asyncio.to_thread(file.write, buffered)
                        buffered, held = [], 0
                await asyncio.to_thread(file.finish, buffered)
            finally:
                if not file.closed:
                    await asyncio.to_thread(file.close)
            return size, resp.status, trace_id, b""

    async def _call_api(
        self,
        op: Operation,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        task_id: str | None,
    ) -> TaskInfo:
        url = self._base_url + path
        headers = {"Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        started = asyncio.get_running_loop().time()
        try:
            async with self._session.request(
                method,
                url,
                json=body,
                headers=headers,
                timeout=self._api_timeout,
                allow_redirects=False,  # keeps the key on the base URL's host
            ) as resp:
                status, resp_headers = resp.status, resp.headers
                raw = await resp.read()
        except aiohttp.ClientError as exc:
            _log.debug("%s %s -> %s", method, path, type(exc).__name__)
            raise _transport_error(op, exc, path) from exc
        except TimeoutError as exc:
            _log.debug("%s %s -> timeout", method, path)
            raise _transport_error(op, exc, path) from exc
        trace_id = _trace_id(resp_headers)
        _log.debug(
            "%s %s -> %s (%.3f s, trace %s)",
            method,
            path,
            status,
            asyncio.get_running_loop().time() - started,
            trace_id or "-",
        )
        if 200 <= status < 300:
            return self._parse_success(op, raw, trace_id, task_id)
        raise self._status_error(op, status, raw, resp_headers, trace_id, task_id, path)

    def _parse_success(
        self, op: Operation, raw: bytes, trace_id: str | None, task_id: str | None
    ) -> TaskInfo:
        safe = op != "create"
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise TransportError(
                f"provider answered the {op} with a body that is not JSON"
                + ("; the task may exist" if not safe else "")
                + f": {self._scrub(_raw_excerpt(raw))}",
                detail=self._scrub(_raw_excerpt(raw)),
                task_id=task_id,
                trace_id=trace_id,
                safe_to_resend=safe,
            ) from exc
        info = parse_task_info(data, trace_id=trace_id)
        if info is None:
            raise TransportError(
                f"provider answered the {op} without a task id"
                + ("; the task may exist" if not safe else ""),
                detail=self._scrub(_raw_excerpt(raw)),
                task_id=task_id,
                trace_id=trace_id,
                safe_to_resend=safe,
            )
        if task_id is not None and info.task_id != task_id:
            _log.warning("asked for task %s, provider answered about %s", task_id, info.task_id)
        return info

    def _status_error(
        self,
        op: Operation,
        status: int,
        raw: bytes,
        headers: Mapping[str, str] | None,
        trace_id: str | None,
        task_id: str | None,
        where: str,
    ) -> ApiError:
        detail = self._scrub(error_detail(raw))
        envelope_id = _envelope_task_id(raw)
        retry_after = parse_retry_after(headers.get("Retry-After")) if headers else None
        return error_for_status(
            op,
            status,
            detail,
            task_id=task_id or envelope_id,
            trace_id=trace_id,
            retry_after=retry_after,
            where=where,
        )

    def _scrub(self, text: str) -> str:
        # A provider that echoes the request back must not carry the key into our messages.
        if self._api_key and self._api_key in text:
            return text.replace(self._api_key, "***")
        return text


_ACCOUNT_REASONS = {
    401: "refused the API key (missing, malformed, expired or revoked)",
    402: "refused for insufficient balance or a missing subscription",
    403: "refused: the key lacks the permission",
}


def error_for_status(
    op: Operation,
    status: int,
    detail: str,
    *,
    task_id: str | None = None,
    trace_id: str | None = None,
    retry_after: float | None = None,
    where: str = "",
) -> ApiError:
    """The exception for a non-2xx answer to ``op``, per the provider's HTTP status table."""
    read = op != "create"
    common: dict[str, Any] = {
        "http_status": status,
        "detail": detail,
        "task_id": task_id,
        "trace_id": trace_id,
    }
    said = f" (HTTP {status}): {detail}"
    if status in _ACCOUNT_REASONS and op != "download":
        # The key is never sent to the video host, so its 401/403 is about the link, not us.
        return AccountError(
            f"provider {_ACCOUNT_REASONS[status]}{said}", safe_to_resend=True, **common
        )
    if status == 429:
        wait = f"; retry after {retry_after:g} s" if retry_after is not None else ""
        return RateLimited(
            f"provider rate limit reached, request not accepted{wait}{said}",
            retry_after=retry_after,
            **common,
        )
    if status == 404 and op == "get":
        return TaskNotFound(
            f"provider does not know task {task_id}{said}", safe_to_resend=True, **common
        )
    if status == 503:
        return ServerError(
            f"provider unavailable, request not accepted{said}", safe_to_resend=True, **common
        )
    if 500 <= status < 600:
        outcome = "; the task may exist" if op == "create" else ""
        return ServerError(f"provider failed{outcome}{said}", safe_to_resend=read, **common)
    if 400 <= status < 500:
        return Rejected(_rejection(op, status, said, where), safe_to_resend=read, **common)
    return TransportError(
        f"provider gave an unexpected answer to the {op}{said}", safe_to_resend=read, **common
    )


def _rejection(op: Operation, status: int, said: str, where: str) -> str:
    if status == 409:
        return f"provider says the task already exists, so this request created none{said}"
    if status == 423:
        return f"provider refused: the resource is locked{said}"
    if status == 451:
        return f"provider refused for legal reasons{said}"
    if status == 404 and op == "create":
        return f"provider has no endpoint at {where}; check the base URL and model{said}"
    if op == "download":
        return f"video host refused the download of {where}; the link may have expired{said}"
    return f"provider rejected the request{said}"


def _transport_error(op: Operation, exc: BaseException, where: str) -> TransportError:
    """Map an aiohttp or timeout failure; a create is safe only if it never connected."""
    never_sent = isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError)
    safe = op != "create" or never_sent
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
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
    reason = str(exc) or type(exc).__name__
    return TransportError(
        f"{op}: {what} {where}{tail} ({reason})", detail=reason, safe_to_resend=safe
    )


def parse_task_info(data: Any, *, trace_id: str | None = None) -> TaskInfo | None:
    """A ``TaskInfo`` from a decoded answer body; None when it names no task."""
    if not isinstance(data, dict):
        return None
    info = data.get("task_info")
    if not isinstance(info, dict):
        info = data
    task_id = info.get("id", info.get("task_id"))
    if not isinstance(task_id, str | int) or isinstance(task_id, bool) or str(task_id) == "":
        return None
    raw_status = str(info.get("status") or "")
    return TaskInfo(
        task_id=str(task_id),
        state=fold_status(raw_status),
        raw_status=raw_status,
        created_at=parse_timestamp(info.get("created_at")),
        updated_at=parse_timestamp(info.get("updated_at")),
        videos=_videos(data.get("videos", info.get("videos"))),
        error=_provider_error(info.get("error")),
        trace_id=trace_id,
    )


def fold_status(raw: str) -> TaskState:
    """Fold both status vocabularies into one; an unknown status is still in progress."""
    word = raw.strip().lower()
    if word in _SUCCEEDED:
        return TaskState.SUCCEEDED
    if word in _FAILED:
        return TaskState.FAILED
    if word not in _IN_PROGRESS:
        _log.warning("provider sent unknown task status %r; treating it as in progress", raw)
    return TaskState.IN_PROGRESS


def parse_timestamp(value: Any) -> datetime | None:
    """An aware UTC datetime from either of the provider's forms; None when absent or bad."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        _log.debug("ignoring unreadable timestamp %r", value)
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: seconds or an HTTP date; None if unusable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def error_detail(raw: bytes) -> str:
    """The provider's reason from an error body: detail, error, message, envelope, else text."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        data = None
    if isinstance(data, dict):
        for key in ("detail", "error", "message"):
            text = _text_of(data.get(key))
            if text:
                return _truncate(text)
        info = data.get("task_info")
        if isinstance(info, dict):
            error = _provider_error(info.get("error"))
            if error is not None:
                return _truncate(error.detail or str(error))
    return _raw_excerpt(raw) or "no detail given"


def _text_of(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict):
        parts = [
            _text_of(value.get(k)) for k in ("detail", "message", "msg", "title") if value.get(k)
        ]
        if not parts and value.get("code") is not None:
            parts = [f"code {value['code']}"]
        return " ".join(dict.fromkeys(p for p in parts if p)) or json.dumps(value)
    if isinstance(value, list):
        return "; ".join(t for t in (_text_of(v) for v in value) if t)
    return str(value)


def _provider_error(value: Any) -> ProviderError | None:
    if isinstance(value, dict):
        code = value.get("code")
        title, detail = value.get("title"), value.get("detail", value.get("message"))
        return ProviderError(
            code=code if isinstance(code, int | str) and not isinstance(code, bool) else None,
            title=str(title) if title is not None else None,
            detail=str(detail) if detail is not None else None,
        )
    if isinstance(value, str) and value:
        return ProviderError(code=None, title=None, detail=value)
    return None


def _videos(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    urls = [v.get("url") if isinstance(v, dict) else v for v in value]
    return tuple(u for u in urls if isinstance(u, str) and u)


def _envelope_task_id(raw: bytes) -> str | None:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    info = parse_task_info(data) if isinstance(data, dict) and "task_info" in data else None
    return info.task_id if info else None


def _trace_id(headers: Mapping[str, str]) -> str | None:
    value = headers.get("Traceparent", "").strip()
    if not value:
        return None
    match = _TRACEPARENT.match(value.lower())
    return match.group(1) if match else value[:100]


def _truncate(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _DETAIL_LIMIT else text[: _DETAIL_LIMIT - 1] + "…"


def _raw_excerpt(raw: bytes) -> str:
    return _truncate(raw.decode("utf-8", errors="replace"))


def _loggable_url(url: str) -> str:
    # Signed asset URLs carry their credentials in the query string.
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)


class _PartFile:
    """A download's ``.part`` file, opened on first write; finished by fsync and rename."""

    def __init__(self, part: Path) -> None:
        self.part = part
        self._handle: Any = None
        self.closed = False

    def write(self, chunks: list[bytes]) -> None:
        if self._handle is None:
            self._handle = self.part.open("wb")
        self._handle.writelines(chunks)

    def finish(self, chunks: list[bytes]) -> None:
        """Write the rest, make the content durable, then give the file its real name."""
        self.write(chunks)
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self.close()
        os.replace(self.part, self.part.with_name(self.part.name.removesuffix(".part")))

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
        self.closed = True


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open a folder; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
