"""A hostile provider on loopback: MuleRouter's routes, each answer scripted by the test.

It counts what it saw and how many bytes it managed to push, so a test can pin that the client
stopped reading. Every handler ends on its own (a byte budget or a time budget), so nothing
outlives the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from batchwan.sim.mp4 import tiny_mp4

Handler = Callable[[web.Request, "Hostile"], Awaitable[web.StreamResponse]]


async def accept(request: web.Request, server: Hostile) -> web.StreamResponse:
    """A normal create: 202 with a fresh task id."""
    await request.read()
    task_id = str(uuid.uuid4())
    server.task_ids.append(task_id)
    return web.json_response({"task_info": {"id": task_id, "status": "pending"}}, status=202)


async def complete(request: web.Request, server: Hostile) -> web.StreamResponse:
    """A normal poll: the task completed, with its video on this server."""
    task_id = request.match_info["task_id"]
    return web.json_response(
        {
            "task_info": {"id": task_id, "status": "completed"},
            "videos": [f"{server.base_url}/videos/{task_id}.mp4"],
        }
    )


async def mp4(request: web.Request, server: Hostile) -> web.StreamResponse:
    """A normal video: a small MP4 that differs per link."""
    return web.Response(body=tiny_mp4(request.path), content_type="video/mp4")


def answer(status: int, payload: Any = None, *, text: str | None = None) -> Handler:
    """Always the same answer: JSON, or raw text."""

    async def handle(request: web.Request, server: Hostile) -> web.StreamResponse:
        await request.read()
        if text is not None:
            return web.Response(status=status, text=text)
        return web.json_response(payload, status=status)

    return handle


def created_as(task_id: Any) -> Handler:
    """A create accepted under the given (hostile) task id."""
    return answer(202, {"task_info": {"id": task_id, "status": "pending"}})


def completed_with(*videos: Any) -> Handler:
    """A poll that says completed, with these video links."""

    async def handle(request: web.Request, server: Hostile) -> web.StreamResponse:
        info = {"id": request.match_info["task_id"], "status": "completed"}
        return web.json_response({"task_info": info, "videos": list(videos)})

    return handle


def trickle(data: bytes, every: float, *, status: int = 200, budget: float = 30.0) -> Handler:
    """Send ``data`` one byte every ``every`` seconds (for at most ``budget`` seconds)."""

    async def handle(request: web.Request, server: Hostile) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(status=status, headers={"Content-Length": str(len(data))})
        await response.prepare(request)
        loop = asyncio.get_running_loop()
        ends = loop.time() + budget
        with contextlib.suppress(ConnectionError, RuntimeError):
            for byte in data:
                if loop.time() > ends:
                    break
                await response.write(bytes([byte]))
                server.bytes_sent += 1
                await asyncio.sleep(every)
        return response

    return handle


def endless(head: bytes, filler: bytes = b"\0", *, limit: int = 64 << 20) -> Handler:
    """``head``, then ``filler`` without end (up to ``limit`` bytes), with no Content-Length."""

    async def handle(request: web.Request, server: Hostile) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        chunk = (filler * (65536 // len(filler) + 1))[:65536]
        with contextlib.suppress(ConnectionError, RuntimeError):
            await response.write(head)
            server.bytes_sent += len(head)
            while server.bytes_sent < limit:
                await response.write(chunk)
                server.bytes_sent += len(chunk)
        return response

    return handle


def then(first: Handler, after: Handler, *, times: int = 1) -> Handler:
    """``first`` for the first ``times`` calls, ``after`` from then on."""
    calls = 0

    async def handle(request: web.Request, server: Hostile) -> web.StreamResponse:
        nonlocal calls
        calls += 1
        return await (first if calls <= times else after)(request, server)

    return handle


@dataclass
class Hostile:
    """The scripted server: its answers, what it saw, and where it listens."""

    create: Handler = accept
    poll: Handler = complete
    video: Handler = mp4
    seen: Counter[str] = field(default_factory=Counter)
    task_ids: list[str] = field(default_factory=list)
    bytes_sent: int = 0
    base_url: str = ""

    def app(self) -> web.Application:
        """The routes: create, poll, videos; everything else 404."""
        base = "/vendors/{vendor}/v1/{model}/generation"

        def counted(kind: str, handler: Callable[[], Handler]) -> Any:
            async def handle(request: web.Request) -> web.StreamResponse:
                self.seen[kind] += 1
                return await handler()(request, self)

            return handle

        app = web.Application()
        app.router.add_post(base, counted("create", lambda: self.create))
        app.router.add_get(base + "/{task_id}", counted("poll", lambda: self.poll))
        app.router.add_get("/videos/{name:.*}", counted("video", lambda: self.video))
        return app


@contextlib.contextmanager
def serving(server: Hostile) -> Iterator[Hostile]:
    """Serve ``server`` on a free loopback port from a background thread's own loop."""
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        runner = web.AppRunner(server.app(), access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        stop = asyncio.Event()
        box["loop"], box["stop"] = asyncio.get_running_loop(), stop
        ready.set()
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    thread = threading.Thread(target=lambda: asyncio.run(main()), name="hostile", daemon=True)
    thread.start()
    if not ready.wait(timeout=30):
        raise RuntimeError("the hostile server did not start within 30 s")
    try:
        yield server
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(timeout=30)


def deep(levels: int) -> bytes:
    """A JSON document nested ``levels`` deep."""
    return b'{"task_info": ' + b"[" * levels + b"]" * levels + b"}"


def envelope(**info: Any) -> bytes:
    """A task_info envelope as bytes."""
    return json.dumps({"task_info": info}).encode()
