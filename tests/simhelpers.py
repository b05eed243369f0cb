"""Helpers shared by the client and simulator tests: servers on loopback and request bodies."""

from __future__ import annotations

import base64
import io
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from PIL import Image

from batchwan.provider.client import Client, open_session
from batchwan.sim.simulator import RunningSimulator, SimConfig, serve

IMAGE_URL = "https://assets.example.com/first-frame.png"


def body(**changes: Any) -> dict[str, Any]:
    """A valid create body, with fields changed or (value None) removed."""
    base: dict[str, Any] = {"prompt": "a red fox runs through snow", "image": IMAGE_URL}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def image_data_uri(
    width: int = 400, height: int = 400, *, fmt: str = "PNG", mode: str = "RGB"
) -> str:
    """A ``data:`` URI holding a real image of the given size, format and mode."""
    color: Any = (10, 20, 30, 0) if mode == "RGBA" else (10, 20, 30)
    out = io.BytesIO()
    Image.new(mode, (width, height), color).save(out, format=fmt)
    subtype = {"JPEG": "jpeg"}.get(fmt, fmt.lower())
    return f"data:image/{subtype};base64,{base64.b64encode(out.getvalue()).decode()}"


def predicted_hits(stream_seed: int | str, rate: float, draws: int) -> list[int]:
    """Indexes of the draws below ``rate`` in ``random.Random(stream_seed)``."""
    rng = random.Random(stream_seed)
    return [i for i in range(draws) if rng.random() < rate]


@asynccontextmanager
async def sim_and_client(
    config: SimConfig | None = None, *, api_key: str | None = None, client_timeout: float = 10.0
) -> AsyncIterator[tuple[RunningSimulator, Client]]:
    """A simulator on loopback and a client pointed at it, both closed at the end."""
    async with serve(config or SimConfig()) as running, open_session() as session:
        yield (
            running,
            Client(session, base_url=running.base_url, api_key=api_key, timeout=client_timeout),
        )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def tiny_server(handler: Handler) -> AsyncIterator[str]:
    """Serve ``handler`` for every path on a free loopback port; yields the base URL."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def answering(
    status: int,
    payload: Any = None,
    *,
    text: str | None = None,
    headers: dict[str, str] | None = None,
) -> Handler:
    """A handler that always gives the same answer (JSON payload, or raw text)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        await request.read()
        if text is not None:
            return web.Response(status=status, text=text, headers=headers)
        return web.json_response(payload, status=status, headers=headers)

    return handle
