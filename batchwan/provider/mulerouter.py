"""MuleRouter's envelope: its paths, its ``task_info`` answers, its error bodies and statuses."""

from __future__ import annotations

import email.utils
import json
import logging
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from batchwan.catalog.registry import find_model
from batchwan.errors import (
    AccountError,
    ApiError,
    BadAnswer,
    InputError,
    RateLimited,
    Rejected,
    ServerError,
    TaskNotFound,
    TransportError,
)
from batchwan.provider.base import (
    DEPTH_LIMIT,
    TEXT_LIMIT,
    Operation,
    Request,
    checked_task_id,
    clean_text,
    too_deep,
)
from batchwan.values import ProviderError, TaskInfo, TaskState

_log = logging.getLogger(__name__)

_IN_PROGRESS = frozenset({"pending", "queued", "running", "processing", "retrying"})
_SUCCEEDED = frozenset({"completed", "succeeded"})
_FAILED = frozenset({"failed"})
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
#: A video URL longer than this, or with spaces or control characters, is not kept.
URL_LIMIT = 4096
#: At most this many video URLs are kept from one answer (the runner uses the first).
VIDEOS_LIMIT = 8


def generation_path(model: str) -> str:
    """The create path of ``model``: the model registry's, else MuleRouter's naming pattern.

    MuleRouter's own ``*-spark`` models live under its own vendor; the Wan models under alibaba.
    """
    if not _MODEL_NAME.fullmatch(model):
        raise InputError(f"model name {model!r} is not usable in a URL path")
    spec = find_model(model)
    if spec is not None:
        return spec.path
    vendor = "mulerouter" if model.endswith("-spark") else "alibaba"
    return f"/vendors/{vendor}/v1/{quote(model, safe='')}/generation"


class MuleRouter:
    """MuleRouter: ``/vendors/<vendor>/v1/<model>/generation`` and its ``task_info`` envelope."""

    name = "mulerouter"

    def __init__(self, path_for: Callable[[str], str] = generation_path) -> None:
        # The model registry may know a model's path; any other name is built by rule.
        self._path_for = path_for

    def create_request(self, body: Mapping[str, Any], model: str) -> Request:
        """POST the API fields as they are to the model's generation path."""
        return Request("POST", self._path_for(model), json=dict(body))

    def status_request(self, task_id: str, model: str) -> Request:
        """GET the generation path plus the (percent-encoded) task id."""
        return Request("GET", f"{self._path_for(model)}/{quote(task_id, safe='')}")

    def parse_task(self, data: Any, *, trace_id: str | None) -> TaskInfo | None:
        """The task in an answer; None when it names none; BadAnswer when its id is unsafe."""
        return parse_task_info(data, trace_id=trace_id)

    def classify(
        self,
        op: Operation,
        status: int,
        raw: bytes,
        headers: Mapping[str, str],
        *,
        task_id: str | None,
        where: str,
    ) -> ApiError:
        """Per the HTTP table of the provider's documentation."""
        return error_for_status(
            op,
            status,
            error_detail(raw),
            task_id=task_id or _envelope_task_id(raw),
            trace_id=self.trace_id(headers),
            retry_after=parse_retry_after(headers.get("Retry-After")),
            where=where,
        )

    def trace_id(self, headers: Mapping[str, str]) -> str | None:
        """The W3C trace id of ``Traceparent``, else the header's first 100 clean characters."""
        value = headers.get("Traceparent", "").strip()
        if not value:
            return None
        match = _TRACEPARENT.match(value.lower())
        return match.group(1) if match else clean_text(value, 100)


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


def parse_task_info(data: Any, *, trace_id: str | None = None) -> TaskInfo | None:
    """A ``TaskInfo`` from a decoded answer body; None when it names no task.

    Raises ``BadAnswer`` (not safe to resend) when the id is there but unusable: such a task
    may exist, and the id must not reach a URL, a file name or the record.
    """
    # ``data`` comes from ``decode``, which has refused absurd nesting already.
    if not isinstance(data, dict):
        return None
    info = data.get("task_info")
    if not isinstance(info, dict):
        info = data
    raw_id = info.get("id", info.get("task_id"))
    if raw_id is None or isinstance(raw_id, bool) or str(raw_id) == "":
        return None
    task_id = checked_task_id(raw_id)
    if task_id is None:
        shown = clean_text(repr(raw_id) if isinstance(raw_id, str) else type(raw_id).__name__, 80)
        raise BadAnswer(
            f"provider answered with a task id that is not usable ({shown}); the task may exist",
            detail=shown,
            trace_id=trace_id,
        )
    raw_status = clean_text(info.get("status") or "", 40)
    return TaskInfo(
        task_id=task_id,
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
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
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
    if value is None or not value.strip() or len(value) > 64:
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
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def decode(raw: bytes) -> Any:
    """The JSON in ``raw``, or None when it is not JSON or nests absurdly deep."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    # Nesting needs an opening bracket per level: a body with few of them cannot be too deep.
    if raw.count(b"{") + raw.count(b"[") <= DEPTH_LIMIT:
        return data
    return None if too_deep(data) else data


def error_detail(raw: bytes) -> str:
    """The provider's reason from an error body: detail, error, message, envelope, else text.

    Always clean: no control characters or escape sequences, one line, at most 300 characters.
    """
    data = decode(raw)
    if isinstance(data, dict):
        for key in ("detail", "error", "message"):
            text = _text_of(data.get(key))
            if text:
                return clean_text(text)
        info = data.get("task_info")
        if isinstance(info, dict):
            error = _provider_error(info.get("error"))
            if error is not None:
                return clean_text(error.detail or str(error))
    return raw_excerpt(raw) or "no detail given"


def raw_excerpt(raw: bytes) -> str:
    """The start of a body as clean text, for messages."""
    return clean_text(raw[: TEXT_LIMIT * 4].decode("utf-8", errors="replace"))


def _text_of(value: Any, depth: int = 0) -> str:
    if value is None or depth > 3:
        return ""
    if isinstance(value, str):
        return value.strip()[: TEXT_LIMIT * 4]
    if isinstance(value, dict):
        parts = [
            _text_of(value.get(k), depth + 1)
            for k in ("detail", "message", "msg", "title")
            if value.get(k)
        ]
        if not parts and value.get("code") is not None:
            parts = [f"code {_text_of(value['code'], depth + 1)}"]
        return " ".join(dict.fromkeys(p for p in parts if p)) or json.dumps(value)[:TEXT_LIMIT]
    if isinstance(value, list):
        return "; ".join(t for t in (_text_of(v, depth + 1) for v in value[:10]) if t)
    return str(value)[:TEXT_LIMIT]


def _provider_error(value: Any) -> ProviderError | None:
    if isinstance(value, dict):
        code = value.get("code")
        title, detail = value.get("title"), value.get("detail", value.get("message"))
        if isinstance(code, str):
            code = clean_text(code, 40)
        elif not isinstance(code, int) or isinstance(code, bool) or abs(code) > 10**9:
            code = None
        return ProviderError(
            code=code,
            title=clean_text(title, 100) if title is not None else None,
            detail=clean_text(detail) if detail is not None else None,
        )
    if isinstance(value, str) and value:
        return ProviderError(code=None, title=None, detail=clean_text(value))
    return None


def _videos(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    urls = [v.get("url") if isinstance(v, dict) else v for v in value[:VIDEOS_LIMIT]]
    kept = tuple(u for u in urls if isinstance(u, str) and _plain_url(u))
    if len(kept) < len(urls):
        _log.warning("ignored %d video link(s) that are not plain URLs", len(urls) - len(kept))
    return kept


def _plain_url(url: str) -> bool:
    # Every white space but the plain space is unprintable, so one test at C speed suffices.
    return 0 < len(url) <= URL_LIMIT and url.isprintable() and " " not in url


def _envelope_task_id(raw: bytes) -> str | None:
    data = decode(raw)
    if not isinstance(data, dict) or not isinstance(data.get("task_info"), dict):
        return None
    return checked_task_id(data["task_info"].get("id"))
