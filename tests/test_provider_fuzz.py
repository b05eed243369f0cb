"""Fuzzing the client with random and oversized answers from a real server on loopback.

Whatever the server sends (any status, odd headers, JSON of any shape and type, binary junk,
bodies past the cap or without end, nesting 100,000 deep) a call either returns or raises an
error of the tree, and memory stays bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchwan.errors import ApiError
from batchwan.provider.client import Client, Limits, open_session

TASK = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
MB = 1 << 20


class Scripted:
    """The answer the server gives next; set by each example before its call."""

    status: int = 200
    headers: dict[str, str] = {}  # noqa: RUF012  # one instance, replaced whole each example
    body: bytes = b""
    endless: bool = False


SCRIPT = Scripted()


async def _handle(request: web.Request) -> web.StreamResponse:
    await request.read()
    script = SCRIPT
    if not script.endless:
        return web.Response(status=script.status, headers=script.headers, body=script.body)
    response = web.StreamResponse(status=script.status, headers=script.headers)
    response.enable_chunked_encoding()
    await response.prepare(request)
    with contextlib.suppress(ConnectionError, RuntimeError):
        await response.write(script.body)
        chunk = b"7" * 65536
        for _ in range(4096):  # 256 MB at most, if nobody hangs up
            await response.write(chunk)
    return response


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, Scripted]]:
    """One scripted server for the whole module, in its own thread."""
    script = SCRIPT
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", _handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        box["url"] = f"http://127.0.0.1:{runner.addresses[0][1]}"
        box["loop"], box["stop"] = asyncio.get_running_loop(), asyncio.Event()
        ready.set()
        await box["stop"].wait()
        await runner.cleanup()

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    assert ready.wait(30)
    yield box["url"], script
    box["loop"].call_soon_threadsafe(box["stop"].set)
    thread.join(30)


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=50),
    st.sampled_from(["completed", "failed", "pending", "", "../x", "http://[::1", "ftp://a"]),
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(
            st.sampled_from(
                [
                    "task_info",
                    "id",
                    "task_id",
                    "status",
                    "error",
                    "videos",
                    "url",
                    "code",
                    "detail",
                    "message",
                    "title",
                    "created_at",
                    "output",
                ]
            ),
            inner,
            max_size=6,
        ),
    ),
    max_leaves=30,
)
_ENVELOPE = st.fixed_dictionaries(
    {"task_info": st.fixed_dictionaries({"id": _SCALARS, "status": _SCALARS}), "videos": _JSON}
)


@st.composite
def _bodies(draw: st.DrawFn) -> tuple[bytes, bool]:
    kind = draw(st.sampled_from(["json", "envelope", "binary", "big", "deep", "endless"]))
    if kind == "json":
        return json.dumps(draw(_JSON)).encode(), False
    if kind == "envelope":
        return json.dumps(draw(_ENVELOPE)).encode(), False
    if kind == "binary":
        return draw(st.binary(max_size=2000)), False
    if kind == "big":
        size = draw(st.sampled_from([MB - 1, MB, MB + 1, 3 * MB]))
        return b'{"task_info": {"id": "' + b"a" * size + b'"}}', False
    if kind == "deep":
        levels = draw(st.integers(min_value=30, max_value=100_000))
        return b"[" * levels + b"]" * levels, False
    return b'{"task_info": {"id": "', True


_HEADERS = st.dictionaries(
    st.sampled_from(["Retry-After", "Traceparent", "Content-Type", "X-Anything", "Location"]),
    st.text(
        st.characters(min_codepoint=32, max_codepoint=126), max_size=200
    ),  # header values cannot hold CR or LF
    max_size=4,
)


async def _one(url: str, op: str, folder: Path) -> None:
    async with open_session() as session:
        client = Client(session, base_url=url, api_key="sk-fuzz-0123456789", limits=_LIMITS)
        try:
            if op == "create":
                await client.create({"prompt": "p", "image": "https://a/b.png"})
            elif op == "get":
                await client.get(TASK)
            else:
                await client.download(f"{url}/v.mp4", folder / "v.mp4")
        except ApiError:
            pass  # the only kind of failure allowed out


_LIMITS = Limits(create_deadline=5, poll_deadline=5, download_deadline=5, max_video_bytes=2 * MB)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    status=st.one_of(
        st.sampled_from([200, 202, 400, 401, 404, 429, 500, 503]), st.integers(200, 599)
    ),
    headers=_HEADERS,
    answer=_bodies(),
    op=st.sampled_from(["create", "get", "download"]),
)
def test_no_answer_escapes_the_error_tree(
    server: tuple[str, Scripted],
    status: int,
    headers: dict[str, str],
    answer: tuple[bytes, bool],
    op: str,
) -> None:
    """Any status, headers and body: the call returns or raises ApiError; memory stays small."""
    url, script = server
    if status in (204, 304):  # no body allowed: the server itself would refuse to send one
        status = 200
    script.status, script.headers = status, headers
    script.body, script.endless = answer
    tracemalloc.start()
    try:
        with tempfile.TemporaryDirectory() as folder:
            asyncio.run(_one(url, op, Path(folder)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 48 * MB
