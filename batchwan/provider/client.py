"""The provider as the runner sees it: create, get, download, over one session for the run.

One attempt per call: retrying is the runner's job. Every failure becomes an ``ApiError`` from
``batchwan.errors`` whose ``safe_to_resend`` says whether the provider surely did not act on the
request. Reads (``get``, ``download``) are always safe to repeat. A create is safe to resend only
when it surely was not accepted: 429, 503, a connection that never opened. Anything after the
request left this machine (a timeout or deadline while waiting, a dropped connection,
500/502/504, a 2xx that cannot be read or holds an unusable task id) may have created a task, so
it is not.

``AccountError`` is safe to resend too (the provider refused it), but it means every later call
will fail the same way: check for it before looking at ``safe_to_resend``.

The envelope is the provider's (``mulerouter.py``); sockets, deadlines and caps are the
transport's (``transport.py``); videos are fetched by ``downloads.py``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp

from batchwan.errors import BadAnswer, TransportError
from batchwan.provider.base import Operation, Provider, Request, checked_task_id
from batchwan.provider.downloads import AddressPolicy, Downloader
from batchwan.provider.mulerouter import (
    MuleRouter,
    decode,
    error_detail,
    fold_status,
    generation_path,
    parse_retry_after,
    parse_task_info,
    parse_timestamp,
    raw_excerpt,
)
from batchwan.provider.transport import Answer, Limits, Transport, open_session
from batchwan.values import DEFAULT_MODEL, TaskInfo

__all__ = [
    "Client",
    "Limits",
    "error_detail",
    "fold_status",
    "open_session",
    "parse_retry_after",
    "parse_task_info",
    "parse_timestamp",
]

_log = logging.getLogger(__name__)


class Client:
    """One provider endpoint set, over one aiohttp session for the whole run."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        api_key: str | None,
        model: str = DEFAULT_MODEL,
        timeout: float | None = None,
        limits: Limits | None = None,
        provider: Provider | None = None,
    ) -> None:
        if limits is None:
            limits = Limits()
        if timeout is not None:  # one number for every timeout and deadline (tests, scripts)
            if timeout <= 0:
                raise ValueError("timeout must be positive")
            limits = Limits(
                connect_timeout=timeout,
                read_timeout=timeout,
                create_deadline=max(timeout, limits.create_deadline),
                poll_deadline=max(timeout, limits.poll_deadline),
                download_deadline=max(timeout, limits.download_deadline),
                max_answer_bytes=limits.max_answer_bytes,
                max_video_bytes=limits.max_video_bytes,
            )
        self._provider: Provider = provider or MuleRouter()
        self._transport = Transport(session, base_url=base_url, api_key=api_key, limits=limits)
        self._model = model
        generation_path(model)  # refuses a model name unusable in a path, up front
        self._downloader = Downloader(
            session, self._provider, limits, AddressPolicy(self._transport.base_url)
        )

    def __repr__(self) -> str:
        key = "set" if self._transport.has_key else "none"
        return f"Client(base_url={self.base_url!r}, model={self._model!r}, api_key={key})"

    @property
    def base_url(self) -> str:
        """The provider's base URL, without a trailing slash."""
        return self._transport.base_url

    @property
    def model(self) -> str:
        """The model used when a call names none."""
        return self._model

    async def create(self, body: Mapping[str, Any], model: str | None = None) -> TaskInfo:
        """Submit one generation; the answer's task id must be recorded at once."""
        request = self._provider.create_request(body, model or self._model)
        return await self._call("create", request, None)

    async def get(self, task_id: str, model: str | None = None) -> TaskInfo:
        """Look up one task's state, videos and error."""
        if checked_task_id(task_id) != task_id:
            raise BadAnswer(
                f"not a usable task id: {task_id[:80]!r}", task_id=None, safe_to_resend=True
            )
        request = self._provider.status_request(task_id, model or self._model)
        return await self._call("get", request, task_id)

    async def download(self, url: str, dest: Path, *, sync_folder: bool = True) -> int:
        """Stream ``url`` into ``dest``; return its bytes (see ``downloads.Downloader``)."""
        return await self._downloader.download(url, dest, sync_folder=sync_folder)

    async def _call(self, op: Operation, request: Request, task_id: str | None) -> TaskInfo:
        loop = asyncio.get_running_loop()
        started = loop.time()
        answer = await self._transport.call(op, request)
        trace_id = self._provider.trace_id(answer.headers)
        if _log.isEnabledFor(logging.DEBUG):  # run.log keeps INFO: most runs never time a call
            _log.debug("%s %s -> %s (%.3f s, trace %s)", request.method, request.path,
                       answer.status, loop.time() - started, trace_id or "-")  # fmt: skip
        if not 200 <= answer.status < 300:
            error = self._provider.classify(
                op, answer.status, answer.body, answer.headers, task_id=task_id, where=request.path
            )
            error.args = (self._transport.scrub(str(error)),)
            error.detail = self._transport.scrub(error.detail or "") or None
            raise error
        return self._parse(op, answer, trace_id, task_id)

    def _parse(
        self, op: Operation, answer: Answer, trace_id: str | None, task_id: str | None
    ) -> TaskInfo:
        safe = op != "create"
        may_exist = "" if safe else "; the task may exist"
        if answer.cut:
            limit = self._transport.limits.max_answer_bytes
            raise BadAnswer(
                f"provider answered the {op} with more than {limit} bytes{may_exist}",
                task_id=task_id,
                trace_id=trace_id,
                safe_to_resend=safe,
            )
        data = decode(answer.body)
        if data is None:
            excerpt = self._excerpt(answer)
            raise TransportError(
                f"provider answered the {op} with a body that is not JSON{may_exist}: {excerpt}",
                detail=excerpt,
                task_id=task_id,
                trace_id=trace_id,
                safe_to_resend=safe,
            )
        try:
            info = self._provider.parse_task(data, trace_id=trace_id)
        except BadAnswer as exc:
            if task_id is None:
                raise
            info = None  # a lookup already knows which task it asked about
            _log.warning("task %s: %s", task_id, exc)
        if info is None:
            raise TransportError(
                f"provider answered the {op} without a task id{may_exist}",
                detail=self._excerpt(answer),
                task_id=task_id,
                trace_id=trace_id,
                safe_to_resend=safe,
            )
        if task_id is not None and info.task_id != task_id:
            _log.warning("asked for task %s, provider answered about %s", task_id, info.task_id)
        return info

    def _excerpt(self, answer: Answer) -> str:
        """The start of a refused answer, safe to show (built only for those: it costs)."""
        return self._transport.scrub(raw_excerpt(answer.body))
