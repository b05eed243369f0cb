"""The simulator's HTTP face: routes, answers, dropped connections and delays."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from typing import TYPE_CHECKING, Any

from aiohttp import web

from batchwan.catalog.registry import REGISTRY
from batchwan.catalog.spec import ModelSpec
from batchwan.sim.faults import fault_body
from batchwan.sim.mp4 import tiny_mp4
from batchwan.sim.rules import check_create_body

if TYPE_CHECKING:
    from batchwan.sim.simulator import Simulator

GENERATION = "/vendors/{vendor}/v1/{model}/generation"
# Room for two frames at the image limit as base64 (4/3 of their bytes), and the rest of a body.
MAX_BODY = 3 * max(spec.image.max_bytes for spec in REGISTRY.values()) + (1 << 20)


def build_app(sim: Simulator) -> web.Application:
    """An application whose handlers answer from ``sim``."""
    app = web.Application(client_max_size=MAX_BODY)
    handlers = _Handlers(sim)
    app.router.add_post(GENERATION, handlers.create)
    app.router.add_get(GENERATION + "/{task_id}", handlers.get)
    app.router.add_get("/_sim/videos/{name}", handlers.video)
    app.router.add_get("/_sim/stats", handlers.stats)
    app.router.add_get("/_sim/tasks", handlers.tasks)
    app.router.add_post("/_sim/release", handlers.release)
    app.on_response_prepare.append(_add_traceparent)
    app.on_shutdown.append(handlers.on_shutdown)
    return app


async def _add_traceparent(_request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Traceparent"] = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


class _Handlers:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self._stopping = asyncio.Event()

    async def on_shutdown(self, _app: web.Application) -> None:
        self._stopping.set()  # wakes slow answers so shutdown does not wait for them

    async def _pause(self, seconds: float) -> None:
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), seconds)

    def _refuse_unauthorized(self, request: web.Request) -> web.Response | None:
        problem = self.sim.auth_problem(request.headers.get("Authorization"))
        if problem is None:
            return None
        self.sim.count("unauthorized_401")
        return web.json_response({"detail": problem}, status=401)

    def _model(self, request: web.Request) -> ModelSpec | None:
        """The model served at this path; None (and a 404 counted) for a path of no model."""
        spec = REGISTRY.get(request.match_info["model"])
        unserved = spec is not None and spec.name in self.sim.config.unserved_models
        if spec is None or spec.vendor != request.match_info["vendor"] or unserved:
            self.sim.count("not_found_404")
            return None
        return spec

    async def create(self, request: web.Request) -> web.StreamResponse:
        self.sim.count("creates_received")
        refused = self._refuse_unauthorized(request)
        if refused:
            return refused
        spec = self._model(request)
        if spec is None:
            return _no_model(request)
        self.sim.count_create(spec.path)
        raw = await request.read()
        body: Any = None
        try:
            body = json.loads(raw)
        except ValueError:
            reason: str | None = "request body is not valid JSON"
        else:
            reason = check_create_body(body, spec)
        if reason:
            return _failed_envelope(self.sim.rejected_id(), reason)
        decision = self.sim.decide_create(spec, body)
        await self._pause(decision.delay)
        if decision.fault in ("drop_before", "drop_after"):
            return _drop(request)
        if decision.limit_detail is not None:
            shape = "error" if decision.fault == "limit_in_flight" else "detail"
            return web.json_response(
                {shape: decision.limit_detail},
                status=429,
                headers={"Retry-After": decision.retry_after or "1"},
            )
        if decision.fault is not None:
            status, payload = fault_body(decision.fault)
            headers = {"Retry-After": decision.retry_after} if decision.retry_after else None
            return _respond(status, payload, headers)
        return web.json_response(decision.envelope, status=202)

    async def get(self, request: web.Request) -> web.StreamResponse:
        self.sim.count("gets")
        refused = self._refuse_unauthorized(request)
        if refused:
            return refused
        spec = self._model(request)
        if spec is None:
            return _no_model(request)
        origin = f"{request.scheme}://{request.host}"
        decision = self.sim.decide_get(request.match_info["task_id"], origin, spec.name)
        await self._pause(decision.delay)
        if decision.fault is not None:
            return _respond(*fault_body(decision.fault))
        return web.json_response(decision.body, status=decision.status)

    async def video(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        task_id = name.removesuffix(".mp4")
        seconds = self.sim.video_for(task_id) if task_id != name else None
        if seconds is None:
            return web.json_response({"detail": f"no video {name}"}, status=404)
        return web.Response(body=tiny_mp4(task_id, seconds=seconds), content_type="video/mp4")

    async def stats(self, _request: web.Request) -> web.StreamResponse:
        return web.json_response(self.sim.stats())

    async def tasks(self, _request: web.Request) -> web.StreamResponse:
        return web.json_response(self.sim.tasks())

    async def release(self, request: web.Request) -> web.StreamResponse:
        task_id = request.query.get("task_id")
        if task_id is None and request.can_read_body:
            try:
                data = await request.json()
            except ValueError:
                return web.json_response({"detail": "body must be JSON"}, status=400)
            task_id = data.get("task_id") if isinstance(data, dict) else None
        try:
            self.sim.release(task_id or None)
        except KeyError:
            return web.json_response({"detail": f"task {task_id} not found"}, status=404)
        return web.json_response({"released": task_id or "all"})


def _respond(status: int, payload: Any, headers: dict[str, str] | None = None) -> web.Response:
    if isinstance(payload, str):
        return web.Response(text=payload, status=status, content_type="text/html", headers=headers)
    return web.json_response(payload, status=status, headers=headers)


def _no_model(request: web.Request) -> web.Response:
    names = ", ".join(REGISTRY)
    return web.json_response(
        {"detail": f"no model is served at {request.path}; the models are: {names}"}, status=404
    )


def _failed_envelope(task_id: str, detail: str) -> web.Response:
    error = {"code": 2001, "title": "Invalid Request", "detail": detail}
    return web.json_response(
        {"task_info": {"id": task_id, "status": "failed", "error": error}}, status=400
    )


def _drop(request: web.Request) -> web.StreamResponse:
    """Close the connection without a word, as a dying proxy does."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=500)  # never sent: the transport is gone
