"""The client against real HTTP on loopback: the simulator, or a tiny app for rarer answers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from simhelpers import answering, body, sim_and_client, tiny_server

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
from batchwan.provider.client import (
    Client,
    error_detail,
    fold_status,
    open_session,
    parse_retry_after,
    parse_task_info,
    parse_timestamp,
)
from batchwan.sim.simulator import SimConfig
from batchwan.values import TaskState

KEY = "sk-test-0123456789abcdef"
TASK = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
ENVELOPE_400 = {
    "task_info": {
        "id": TASK,
        "status": "failed",
        "error": {
            "code": 2001,
            "title": "Invalid Request",
            "detail": "image: width 300 px is below 360",
        },
    }
}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """One client session, closed after the test."""
    async with open_session() as s:
        yield s


def client_for(session: aiohttp.ClientSession, url: str, **kw: Any) -> Client:
    """A client with the test key, pointed at ``url``."""
    return Client(session, base_url=url, api_key=KEY, **kw)


# -- every row of the HTTP table, on a create --------------------------------------------------

CREATE_TABLE = [
    (400, ENVELOPE_400, {}, Rejected, False),
    (401, {"detail": "invalid API key"}, {}, AccountError, True),
    (402, {"error": "insufficient balance"}, {}, AccountError, True),
    (403, {"message": "permission denied"}, {}, AccountError, True),
    (404, {"detail": "Not Found"}, {}, Rejected, False),
    (409, {"detail": "task already exists"}, {}, Rejected, False),
    (418, {"detail": "teapot"}, {}, Rejected, False),
    (423, {"error": {"code": 423, "message": "locked"}}, {}, Rejected, False),
    (451, {"message": "unavailable for legal reasons"}, {}, Rejected, False),
    (429, {"message": "slow down"}, {"Retry-After": "7"}, RateLimited, True),
    (429, {"message": "slow down"}, {}, RateLimited, True),
    (500, {"error": "boom"}, {}, ServerError, False),
    (501, {"error": "not implemented"}, {}, ServerError, False),
    (502, {"error": "bad gateway"}, {}, ServerError, False),
    (503, {"message": "unavailable"}, {}, ServerError, True),
    (504, {"detail": "gateway timeout"}, {}, ServerError, False),
]


@pytest.mark.parametrize(("status", "payload", "headers", "kind", "safe"), CREATE_TABLE)
async def test_create_maps_every_status(
    session: aiohttp.ClientSession,
    status: int,
    payload: Any,
    headers: dict[str, str],
    kind: type[ApiError],
    safe: bool,
) -> None:
    """Each non-2xx answer to a create raises its class with the right safe_to_resend."""
    async with tiny_server(answering(status, payload, headers=headers)) as url:
        with pytest.raises(ApiError) as caught:
            await client_for(session, url).create(body())
    assert type(caught.value) is kind
    assert caught.value.safe_to_resend is safe
    assert caught.value.http_status == status
    assert caught.value.trace_id is None  # the tiny app sends no Traceparent


GET_TABLE = [
    (400, Rejected),
    (401, AccountError),
    (402, AccountError),
    (403, AccountError),
    (404, TaskNotFound),
    (409, Rejected),
    (423, Rejected),
    (451, Rejected),
    (429, RateLimited),
    (500, ServerError),
    (502, ServerError),
    (503, ServerError),
    (504, ServerError),
]


@pytest.mark.parametrize(("status", "kind"), GET_TABLE)
async def test_get_errors_are_all_safe_to_resend(
    session: aiohttp.ClientSession, status: int, kind: type[ApiError]
) -> None:
    """A get is a read: every error may be repeated, with the class the status calls for."""
    async with tiny_server(answering(status, {"detail": "nope"})) as url:
        with pytest.raises(ApiError) as caught:
            await client_for(session, url).get(TASK)
    assert type(caught.value) is kind
    assert caught.value.safe_to_resend is True
    assert caught.value.task_id == TASK


async def test_400_message_carries_the_providers_detail(session: aiohttp.ClientSession) -> None:
    """A 400 says what the provider said, in a sentence, with the failed envelope's task id."""
    async with tiny_server(answering(400, ENVELOPE_400)) as url:
        with pytest.raises(Rejected) as caught:
            await client_for(session, url).create(body())
    assert str(caught.value) == (
        "provider rejected the request (HTTP 400): image: width 300 px is below 360"
    )
    assert caught.value.detail == "image: width 300 px is below 360"
    assert caught.value.task_id == TASK


async def test_409_says_no_task_was_created(session: aiohttp.ClientSession) -> None:
    """A 409 is reported as 'already exists', so this request created none."""
    async with tiny_server(answering(409, {"detail": "duplicate"})) as url:
        with pytest.raises(Rejected, match="already exists, so this request created none"):
            await client_for(session, url).create(body())


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("7", 7.0),
        ("0", 0.0),
        ("soon", None),
        ("-3", None),
        ("", None),
    ],
)
async def test_429_retry_after_header(
    session: aiohttp.ClientSession, header: str, expected: float | None
) -> None:
    """Retry-After in whole seconds is kept; garbage or none gives None; still safe."""
    headers = {"Retry-After": header} if header else {}
    async with tiny_server(answering(429, {"message": "slow"}, headers=headers)) as url:
        with pytest.raises(RateLimited) as caught:
            await client_for(session, url).create(body())
    assert caught.value.retry_after == expected
    assert caught.value.safe_to_resend is True


async def test_429_retry_after_http_date(session: aiohttp.ClientSession) -> None:
    """Retry-After as an HTTP date is turned into seconds from now."""
    when = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    async with tiny_server(answering(429, {}, headers={"Retry-After": when})) as url:
        with pytest.raises(RateLimited) as caught:
            await client_for(session, url).create(body())
    assert caught.value.retry_after is not None
    assert 3500 < caught.value.retry_after <= 3600


# -- the same rows, produced by the simulator ---------------------------------------------------


async def test_simulator_accepts_then_completes_and_serves_the_video(tmp_path: Path) -> None:
    """202, then a completed task whose video downloads to disk as an MP4."""
    async with sim_and_client(SimConfig(api_key=KEY), api_key=KEY) as (running, client):
        created = await client.create(body())
        assert created.state is TaskState.IN_PROGRESS
        assert created.raw_status in ("pending", "queued")
        assert created.trace_id is not None
        assert len(created.trace_id) == 32
        done = await client.get(created.task_id)
        assert done.state is TaskState.SUCCEEDED
        assert done.videos == (f"{running.base_url}/_sim/videos/{created.task_id}.mp4",)
        size = await client.download(done.videos[0], tmp_path / "v.mp4")
    data = (tmp_path / "v.mp4").read_bytes()
    assert size == len(data) > 0
    assert data[4:8] == b"ftyp"
    assert not (tmp_path / "v.mp4.part").exists()


async def test_simulator_400_is_rejected_not_resendable() -> None:
    """The simulator's validation answers 400 with the envelope; the client names the field."""
    async with sim_and_client() as (running, client):
        with pytest.raises(Rejected) as caught:
            await client.create(body(duration=7))
    assert caught.value.safe_to_resend is False
    assert caught.value.http_status == 400
    assert caught.value.detail == "duration: must be 5 or 10, got 7"
    assert caught.value.trace_id is not None
    assert running.sim.stats()["rejected_400"] == 1


@pytest.mark.parametrize("key", [None, "sk-wrong", "Basic abc"])
async def test_simulator_401_is_an_account_error(key: str | None) -> None:
    """A missing, wrong or malformed key stops the run: AccountError, and no task exists."""
    async with sim_and_client(SimConfig(api_key=KEY), api_key=key) as (running, client):
        with pytest.raises(AccountError) as caught:
            await client.create(body())
        with pytest.raises(AccountError):
            await client.get(TASK)
    assert caught.value.http_status == 401
    assert running.sim.stats()["tasks_created"] == 0


@pytest.mark.parametrize(
    ("config", "retry_after"),
    [
        (SimConfig(rate_429=1.0, retry_after_seconds=3), 3.0),
        (SimConfig(rate_429_bare=1.0), None),
    ],
)
async def test_simulator_429(config: SimConfig, retry_after: float | None) -> None:
    """A 429 from the simulator is RateLimited, safe, with its Retry-After when sent."""
    async with sim_and_client(config) as (running, client):
        with pytest.raises(RateLimited) as caught:
            await client.create(body())
    assert caught.value.retry_after == retry_after
    assert caught.value.safe_to_resend is True
    assert running.sim.stats()["tasks_created"] == 0


async def test_simulator_429_with_http_date() -> None:
    """The simulator's HTTP-date Retry-After parses to a few seconds."""
    config = SimConfig(rate_429=1.0, retry_after_seconds=30, retry_after_http_date=True)
    async with sim_and_client(config) as (_, client):
        with pytest.raises(RateLimited) as caught:
            await client.create(body())
    assert caught.value.retry_after is not None
    assert 25 <= caught.value.retry_after <= 31


@pytest.mark.parametrize("code", [500, 502, 504])
@pytest.mark.parametrize("created", [True, False])
async def test_simulator_5xx_may_have_created_the_task(code: int, created: bool) -> None:
    """500/502/504 on a create are not safe to resend, whether or not the task was made."""
    config = SimConfig(**{f"rate_{code}": 1.0}, error_after_create_rate=1.0 if created else 0.0)
    async with sim_and_client(config) as (running, client):
        with pytest.raises(ServerError) as caught:
            await client.create(body())
    assert caught.value.safe_to_resend is False
    assert caught.value.http_status == code
    assert "the task may exist" in str(caught.value)
    assert running.sim.stats()["tasks_created"] == int(created)


async def test_simulator_502_html_body_falls_back_to_text() -> None:
    """A gateway's HTML error page becomes the detail, as text."""
    async with sim_and_client(SimConfig(rate_502=1.0)) as (_, client):
        with pytest.raises(ServerError) as caught:
            await client.create(body())
    assert caught.value.detail == "<html><body><h1>502 Bad Gateway</h1></body></html>"


async def test_simulator_503_is_safe_to_resend() -> None:
    """503 on a create means it was not accepted: safe, and no task exists."""
    async with sim_and_client(SimConfig(rate_503=1.0)) as (running, client):
        with pytest.raises(ServerError) as caught:
            await client.create(body())
    assert caught.value.safe_to_resend is True
    assert running.sim.stats()["tasks_created"] == 0


@pytest.mark.parametrize(("field", "tasks"), [("drop_before_rate", 0), ("drop_after_rate", 1)])
async def test_simulator_dropped_connection_is_not_safe(field: str, tasks: int) -> None:
    """A create whose connection drops is unknown either way; only the simulator knows."""
    async with sim_and_client(SimConfig(**{field: 1.0})) as (running, client):
        with pytest.raises(TransportError) as caught:
            await client.create(body())
    assert caught.value.safe_to_resend is False
    assert caught.value.http_status is None
    assert running.sim.stats()["tasks_created"] == tasks


async def test_simulator_slow_create_times_out_unsafely() -> None:
    """A create that times out after being sent may exist (and here it does)."""
    config = SimConfig(slow_rate=1.0, slow_seconds=60)
    async with sim_and_client(config, client_timeout=0.3) as (running, client):
        with pytest.raises(TransportError, match="timed out waiting") as caught:
            await client.create(body())
        assert running.sim.stats()["tasks_created"] == 1
    assert caught.value.safe_to_resend is False


async def test_simulator_slow_get_times_out_safely() -> None:
    """A get that times out is a read: safe to repeat."""
    slow = SimConfig(slow_rate=1.0, slow_seconds=60)
    async with sim_and_client(slow, client_timeout=0.3) as (_, c):
        with pytest.raises(TransportError) as caught:
            await c.get(TASK)
    assert caught.value.safe_to_resend is True


async def test_simulator_new_task_404_then_found() -> None:
    """The first polls of a new task may 404 (TaskNotFound, safe); then it is found."""
    async with sim_and_client(SimConfig(not_found_polls=2)) as (_, client):
        task = await client.create(body())
        for _ in range(2):
            with pytest.raises(TaskNotFound) as caught:
                await client.get(task.task_id)
            assert caught.value.safe_to_resend is True
        assert (await client.get(task.task_id)).state is TaskState.SUCCEEDED


async def test_simulator_unknown_task_is_not_found() -> None:
    """An id the simulator never issued is TaskNotFound with its detail."""
    async with sim_and_client() as (_, client):
        with pytest.raises(TaskNotFound, match=f"task {TASK} not found"):
            await client.get(TASK)


async def test_simulator_poll_faults_are_safe_server_errors() -> None:
    """Gets answered 500/503 at random are ServerErrors that may be retried."""
    async with sim_and_client(SimConfig(poll_fault_rate=1.0)) as (running, client):
        seen = set()
        for _ in range(8):
            with pytest.raises(ServerError) as caught:
                await client.get(TASK)
            assert caught.value.safe_to_resend is True
            seen.add(caught.value.http_status)
    faults = running.sim.stats()["faults"]
    assert seen == {500, 503}
    assert faults["poll_500"] + faults["poll_503"] == 8


async def test_failed_task_carries_the_providers_error() -> None:
    """A task that failed is a TaskInfo with state FAILED and the 3001-3005 error."""
    async with sim_and_client(SimConfig(fail_rate=1.0)) as (_, client):
        info = await client.get((await client.create(body())).task_id)
    assert info.state is TaskState.FAILED
    assert info.error is not None
    assert info.error.code in range(3001, 3006)
    assert info.videos == ()


async def test_success_without_video_stays_succeeded_with_no_videos() -> None:
    """A completed task with no videos is SUCCEEDED with videos empty (the runner fails it)."""
    async with sim_and_client(SimConfig(no_video_rate=1.0)) as (_, client):
        info = await client.get((await client.create(body())).task_id)
    assert info.state is TaskState.SUCCEEDED
    assert info.videos == ()


# -- no usable answer ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("op", ["create", "get", "download"])
async def test_connection_refused_is_safe(
    session: aiohttp.ClientSession, op: str, tmp_path: Path
) -> None:
    """Nobody listening: the request never left, so even a create may be resent."""
    client = client_for(session, f"http://127.0.0.1:{_free_port()}")
    with pytest.raises(TransportError, match="could not connect") as caught:
        await _call(client, op, tmp_path)
    assert caught.value.safe_to_resend is True


@contextmanager
def _full_backlog() -> Iterator[int]:
    """A listening port whose accept queue is full, so new connections hang."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            fillers.append(filler)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
        with socket.socket() as probe:
            probe.settimeout(0.2)
            try:
                probe.connect(("127.0.0.1", port))
            except TimeoutError:
                pass
            else:
                pytest.skip("this kernel accepts beyond the backlog; no connect timeout to test")
        yield port
    finally:
        for filler in fillers:
            filler.close()
        server.close()


async def test_connect_timeout_is_safe(session: aiohttp.ClientSession) -> None:
    """A connection that never opens before the timeout: the create was not sent, safe."""
    with _full_backlog() as port:
        client = client_for(session, f"http://127.0.0.1:{port}", timeout=0.3)
        with pytest.raises(TransportError, match="timed out connecting") as caught:
            await client.create(body())
    assert caught.value.safe_to_resend is True


async def _abort(request: web.Request) -> web.StreamResponse:
    await request.read()
    assert request.transport is not None
    request.transport.abort()
    return web.Response()


@pytest.mark.parametrize(("op", "safe"), [("create", False), ("get", True), ("download", True)])
async def test_reset_after_sending(
    session: aiohttp.ClientSession, op: str, safe: bool, tmp_path: Path
) -> None:
    """The server read the request and hung up: a create may exist, a read may be repeated."""
    async with tiny_server(_abort) as url:
        with pytest.raises(TransportError, match="lost the connection") as caught:
            await _call(client_for(session, url), op, tmp_path)
    assert caught.value.safe_to_resend is safe


@pytest.mark.parametrize(
    ("op", "status", "text", "safe", "pattern"),
    [
        ("create", 202, "<html>accepted</html>", False, "not JSON; the task may exist"),
        ("create", 200, '{"task_info": {"status": "pending"}}', False, "without a task id"),
        ("create", 201, "", False, "not JSON"),
        ("get", 200, "not json at all", True, "not JSON"),
        ("get", 200, "[1, 2]", True, "without a task id"),
    ],
)
async def test_unreadable_success(
    session: aiohttp.ClientSession, op: str, status: int, text: str, safe: bool, pattern: str
) -> None:
    """A 2xx that is not JSON or names no task: unknown for a create, repeatable for a get."""
    async with tiny_server(answering(status, text=text)) as url:
        with pytest.raises(TransportError, match=pattern) as caught:
            await _call(client_for(session, url), op, Path())
    assert caught.value.safe_to_resend is safe
    assert caught.value.http_status is None


async def _call(client: Client, op: str, tmp_path: Path) -> Any:
    if op == "create":
        return await client.create(body())
    if op == "get":
        return await client.get(TASK)
    return await client.download(f"{client.base_url}/video.mp4", tmp_path / "v.mp4")


# -- downloads and the key ---------------------------------------------------------------------


async def test_download_never_sends_the_key(session: aiohttp.ClientSession, tmp_path: Path) -> None:
    """The video host (maybe a third party) gets no Authorization header; the API does."""
    seen: dict[str, str | None] = {}

    async def asset(request: web.Request) -> web.StreamResponse:
        seen[request.path] = request.headers.get("Authorization")
        if request.path.endswith(".mp4"):
            return web.Response(body=b"\0\0\0\x18ftypisom" + bytes(100))
        return web.json_response({"task_info": {"id": TASK, "status": "running"}})

    async with tiny_server(asset) as url:
        client = client_for(session, url)
        await client.get(TASK)
        size = await client.download(f"{url}/clip.mp4?sig=abc", tmp_path / "clip.mp4")
    assert seen[f"/vendors/alibaba/v1/wan2.5-i2v-preview/generation/{TASK}"] == f"Bearer {KEY}"
    assert seen["/clip.mp4"] is None
    assert size == 112


@pytest.mark.parametrize("status", [403, 404, 410])
async def test_download_refusal_is_rejected_and_leaves_no_file(
    session: aiohttp.ClientSession, tmp_path: Path, status: int
) -> None:
    """An asset host's 4xx (an expired link) is a safe Rejected, not an account problem."""
    async with tiny_server(answering(status, {"detail": "link expired"})) as url:
        with pytest.raises(Rejected, match="link may have expired") as caught:
            await client_for(session, url).download(f"{url}/v.mp4", tmp_path / "v.mp4")
    assert caught.value.safe_to_resend is True
    assert _files(tmp_path) == []


async def test_download_cut_short_leaves_no_part_file(
    session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """A body that ends before its Content-Length is a safe TransportError, with no file left."""

    async def short(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "100000"})
        await response.prepare(request)
        await response.write(b"\x00\x00\x00\x18ftypisom" + b"x" * 1000)  # an MP4's start
        assert request.transport is not None
        request.transport.abort()
        return response

    async with tiny_server(short) as url:
        with pytest.raises(TransportError) as caught:
            await client_for(session, url).download(f"{url}/v.mp4", tmp_path / "v.mp4")
    assert caught.value.safe_to_resend is True
    assert _files(tmp_path) == []


def _files(folder: Path) -> list[Path]:
    return list(folder.iterdir())


async def test_key_never_appears_in_messages_logs_or_repr(
    caplog: pytest.LogCaptureFixture, session: aiohttp.ClientSession
) -> None:
    """Even a provider that echoes the key back does not get it into errors, logs or repr."""
    caplog.set_level(logging.DEBUG)

    async def echo(request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {"detail": f"bad key {request.headers['Authorization']}"}, status=401
        )

    async with tiny_server(echo) as url:
        client = client_for(session, url)
        with pytest.raises(AccountError) as caught:
            await client.create(body())
    text = " ".join(
        [str(caught.value), repr(caught.value), str(caught.value.detail), repr(client), caplog.text]
    )
    assert KEY not in text
    assert "bad key Bearer ***" in str(caught.value)


async def test_every_call_is_logged_with_status_and_trace(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each call logs method, path, status and the trace id at DEBUG."""
    caplog.set_level(logging.DEBUG, logger="batchwan.provider")
    async with sim_and_client() as (_, client):
        info = await client.create(body())
    assert info.trace_id is not None
    assert "POST /vendors/alibaba/v1/wan2.5-i2v-preview/generation -> 202" in caplog.text
    assert f"trace {info.trace_id}" in caplog.text


@pytest.mark.parametrize("url", ["ftp://host", "api.mulerouter.ai", ""])
async def test_bad_base_url_is_an_input_error(session: aiohttp.ClientSession, url: str) -> None:
    """A base URL that is not http(s) is refused up front with a clear message."""
    with pytest.raises(InputError, match="not an http"):
        Client(session, base_url=url, api_key=None)


async def test_many_concurrent_calls_share_one_session() -> None:
    """Fifty creates at once over one session all succeed and are counted once each."""
    async with sim_and_client() as (running, client):
        infos = await asyncio.gather(*(client.create(body(seed=i)) for i in range(50)))
    assert len({i.task_id for i in infos}) == 50
    assert running.sim.stats()["tasks_created"] == 50


# -- parsing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-11-07T05:31:56Z", datetime(2023, 11, 7, 5, 31, 56, tzinfo=UTC)),
        (
            "2026-09-21T08:23:12.657134+00:00",
            datetime(2026, 9, 21, 8, 23, 12, 657134, tzinfo=UTC),
        ),
        ("2026-09-21T10:23:12+02:00", datetime(2026, 9, 21, 8, 23, 12, tzinfo=UTC)),
        ("2026-09-21T08:23:12", datetime(2026, 9, 21, 8, 23, 12, tzinfo=UTC)),
        ("yesterday", None),
        (None, None),
    ],
)
def test_parse_timestamp(text: str | None, expected: datetime | None) -> None:
    """Both provider forms parse to aware UTC datetimes; junk gives None."""
    parsed = parse_timestamp(text)
    assert parsed == expected
    assert parsed is None or parsed.tzinfo is not None


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("pending", TaskState.IN_PROGRESS),
        ("processing", TaskState.IN_PROGRESS),
        ("completed", TaskState.SUCCEEDED),
        ("queued", TaskState.IN_PROGRESS),
        ("running", TaskState.IN_PROGRESS),
        ("retrying", TaskState.IN_PROGRESS),
        ("succeeded", TaskState.SUCCEEDED),
        ("SUCCEEDED", TaskState.SUCCEEDED),
        ("failed", TaskState.FAILED),
    ],
)
def test_fold_status_both_vocabularies(raw: str, state: TaskState) -> None:
    """Both vocabularies fold into the three states."""
    assert fold_status(raw) is state


def test_unknown_status_is_in_progress_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    """An unknown status is still in progress, with a warning naming it."""
    with caplog.at_level(logging.WARNING, logger="batchwan.provider"):
        info = parse_task_info({"task_info": {"id": "t1", "status": "thinking"}})
    assert info is not None
    assert info.state is TaskState.IN_PROGRESS
    assert info.raw_status == "thinking"
    assert "unknown task status 'thinking'" in caplog.text


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"detail": "d", "error": "e", "message": "m"}, "d"),
        ({"error": "e", "message": "m"}, "e"),
        ({"error": {"code": 42, "message": "object error"}, "message": "m"}, "object error"),
        ({"message": "m", **ENVELOPE_400}, "m"),
        (ENVELOPE_400, "image: width 300 px is below 360"),
        ({"task_info": {"error": {"code": 4002, "title": "Service Error"}}}, "4002 Service Error"),
        ({"detail": [{"loc": ["body"], "msg": "field required"}]}, "field required"),
        ({"other": 1}, '{"other": 1}'),
    ],
)
def test_error_detail_reads_shapes_in_order(payload: Any, expected: str) -> None:
    """detail, then error (string or object), then message, then the envelope, then text."""
    assert error_detail(json.dumps(payload).encode()) == expected


def test_error_detail_falls_back_to_truncated_text() -> None:
    """A non-JSON body is its own detail, whitespace folded and cut near 300 characters."""
    detail = error_detail(("Bad   gateway\n" + "x" * 1000).encode())
    assert detail.startswith("Bad gateway x")
    assert len(detail) == 300
    assert error_detail(b"") == "no detail given"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("1.5", 1.5),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
        ("later", None),
        ("nan", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    """Seconds or an HTTP date (a past date waits 0); anything else is None."""
    now = datetime(2015, 10, 21, 7, 28, tzinfo=UTC)
    assert parse_retry_after(value, now=now) == expected


def test_parse_task_info_reads_videos_and_error() -> None:
    """Videos come from the top level; the failed envelope's error is kept whole."""
    info = parse_task_info(
        {
            "task_info": {
                "id": "t1",
                "status": "failed",
                "created_at": "2023-11-07T05:31:56Z",
                "error": {
                    "code": 3005,
                    "title": "Task Execution Error",
                    "detail": "prompt violation",
                },
            },
            "videos": ["https://a/b.mp4", 7, ""],
        }
    )
    assert info is not None
    assert info.videos == ("https://a/b.mp4",)
    assert info.error is not None
    assert (info.error.code, info.error.detail) == (3005, "prompt violation")
