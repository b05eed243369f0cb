"""The provider seam and its checks, against small hostile servers on loopback.

Each value a server sends is checked before use: task ids, video links, body sizes, nesting,
provider text; every call has a deadline. A second envelope (DashScope's, sketched here) fits the
same seam without touching the transport or the downloads.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from simhelpers import body, tiny_server

from batchwan.errors import (
    ApiError,
    BadAnswer,
    InputError,
    Rejected,
    ServerError,
    TransportError,
    VideoRefused,
)
from batchwan.provider.base import Request, checked_task_id, clean_text, too_deep
from batchwan.provider.client import Client, Limits, open_session
from batchwan.provider.downloads import (
    AddressPolicy,
    Downloader,
    address_kind,
    checked_host,
    policy_resolver,
)
from batchwan.provider.mulerouter import MuleRouter, decode, generation_path
from batchwan.provider.resolver import RefusedAddress
from batchwan.values import TaskInfo, TaskState

KEY = "sk-test-0123456789abcdef"
TASK = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
MP4 = b"\0\0\0\x18ftypisom" + bytes(100)
SHORT = Limits(create_deadline=0.4, poll_deadline=0.4, download_deadline=0.4)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """One client session, closed after the test."""
    async with open_session() as s:
        yield s


def _client(session: aiohttp.ClientSession, url: str, **kw: Any) -> Client:
    return Client(session, base_url=url, api_key=KEY, **kw)


def _files(folder: Path) -> list[Path]:
    return list(folder.iterdir())


def _trickle(data: bytes, every: float) -> Any:
    async def handle(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Length": str(len(data))})
        await response.prepare(request)
        try:
            for byte in data:
                await response.write(bytes([byte]))
                await asyncio.sleep(every)
        except (ConnectionError, RuntimeError):
            pass
        return response

    return handle


# -- deadlines -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("op", "safe"), [("create", False), ("get", True), ("download", True)])
async def test_a_trickled_answer_ends_at_its_deadline(
    session: aiohttp.ClientSession, tmp_path: Path, op: str, safe: bool
) -> None:
    """One byte every 0.1 s never trips the read timeout; the total deadline ends it."""
    payload = MP4 if op == "download" else json.dumps({"id": TASK, "status": "pending"}).encode()
    async with tiny_server(_trickle(payload, 0.1)) as url:
        client = _client(session, url, limits=SHORT)
        call = {
            "create": lambda: client.create(body()),
            "get": lambda: client.get(TASK),
            "download": lambda: client.download(f"{url}/v.mp4", tmp_path / "v.mp4"),
        }[op]
        with pytest.raises(TransportError, match=r"0\.4 s deadline") as caught:
            await call()
    assert caught.value.safe_to_resend is safe
    assert _files(tmp_path) == []


# -- task ids ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "task_id",
    ["a/b", "../../etc/x", "..", ".hidden", "a b", "a%2Fb", "x" * 129, "é", "\x1b[2J", "a\nb"],
)
async def test_an_unusable_task_id_on_a_create_may_exist(
    session: aiohttp.ClientSession, task_id: str
) -> None:
    """An accepted create whose id is unfit for a path or a file: BadAnswer, not resendable."""
    answer = {"task_info": {"id": task_id, "status": "pending"}}
    async with tiny_server(_json(202, answer)) as url:
        with pytest.raises(BadAnswer, match="task id that is not usable") as caught:
            await _client(session, url).create(body())
    assert caught.value.safe_to_resend is False
    assert "\x1b" not in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("task_id", ["a/b", "../x", "", "x" * 200])
async def test_get_refuses_an_unusable_task_id_without_a_request(
    session: aiohttp.ClientSession, task_id: str
) -> None:
    """A lookup of an unusable id is a safe BadAnswer (never a ValueError), and sends nothing."""
    seen: list[str] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        seen.append(request.path)
        return web.json_response({})

    async with tiny_server(handle) as url:
        with pytest.raises(BadAnswer) as caught:
            await _client(session, url).get(task_id)
    assert caught.value.safe_to_resend is True
    assert seen == []


def test_task_ids_are_percent_encoded_in_paths() -> None:
    """The status path holds the task id percent-encoded, whatever it contains."""
    request = MuleRouter().status_request("job:7", "wan2.5-i2v-preview")
    assert request.path == "/vendors/alibaba/v1/wan2.5-i2v-preview/generation/job%3A7"


async def test_a_task_id_with_a_colon_is_looked_up(session: aiohttp.ClientSession) -> None:
    """Ids in other providers' styles (job:7) are usable and answered about."""
    async with tiny_server(_json(200, {"task_info": {"id": "job:7", "status": "running"}})) as url:
        info = await _client(session, url).get("job:7")
    assert (info.task_id, info.state) == ("job:7", TaskState.IN_PROGRESS)


async def test_a_lookup_answered_with_an_unusable_id_keeps_the_asked_one(
    session: aiohttp.ClientSession,
) -> None:
    """The poll knows its task: an answer naming `../x` is ignored as unusable, safely."""
    async with tiny_server(_json(200, {"task_info": {"id": "../x", "status": "done"}})) as url:
        with pytest.raises(TransportError) as caught:
            await _client(session, url).get(TASK)
    assert caught.value.safe_to_resend is True


@pytest.mark.parametrize(
    ("value", "expected"),
    [(TASK, TASK), (42, "42"), ("job:7.a_b-c", "job:7.a_b-c"), (True, None), (None, None)],
)
def test_checked_task_id(value: object, expected: str | None) -> None:
    """Ids are strings or integers of plain characters, at most 128 long."""
    assert checked_task_id(value) == expected


# -- sizes and depth -----------------------------------------------------------------------------


def _json(status: int, payload: Any) -> Any:
    async def handle(request: web.Request) -> web.StreamResponse:
        await request.read()
        return web.json_response(payload, status=status)

    return handle


def _endless(head: bytes, sent: list[int], limit: int = 64 << 20) -> Any:
    async def handle(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        chunk = b"x" * 65536
        try:
            await response.write(head)
            while sent[0] < limit:
                await response.write(chunk)
                sent[0] += len(chunk)
        except (ConnectionError, RuntimeError):
            pass
        return response

    return handle


@pytest.mark.parametrize(("op", "safe"), [("create", False), ("get", True)])
async def test_an_endless_answer_is_read_only_to_the_cap(
    session: aiohttp.ClientSession, op: str, safe: bool
) -> None:
    """An answer without end is read to 64 KB here (1 MB by default), then refused."""
    sent = [0]
    limits = Limits(max_answer_bytes=64 * 1024)
    async with tiny_server(_endless(b'{"task_info": {"id": "', sent)) as url:
        client = _client(session, url, limits=limits)
        with pytest.raises(BadAnswer, match="more than 65536 bytes") as caught:
            await (client.create(body()) if op == "create" else client.get(TASK))
        await asyncio.sleep(0.1)
    assert caught.value.safe_to_resend is safe
    assert sent[0] < 16 << 20


async def test_a_declared_oversized_answer_is_not_read(session: aiohttp.ClientSession) -> None:
    """A Content-Length over the cap is refused before a byte of the body is read."""

    async def handle(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"{" + b" " * 200_000 + b"}", content_type="application/json")

    async with tiny_server(handle) as url:
        client = _client(session, url, limits=Limits(max_answer_bytes=100_000))
        with pytest.raises(BadAnswer):
            await client.get(TASK)


@pytest.mark.parametrize("status", [200, 400, 500])
async def test_deep_nesting_is_unreadable_not_a_crash(
    session: aiohttp.ClientSession, status: int
) -> None:
    """100,000 levels (and 40) of nesting: an error of the tree, with the status class kept."""
    for levels in (100_000, 40):
        raw = '{"detail": ' + "[" * levels + "]" * levels + "}"

        async def handle(request: web.Request, raw: str = raw) -> web.StreamResponse:
            return web.Response(status=status, text=raw, content_type="application/json")

        async with tiny_server(handle) as url:
            with pytest.raises(ApiError) as caught:
                await _client(session, url).get(TASK)
        assert caught.value.safe_to_resend is True
        expected = {200: TransportError, 400: Rejected, 500: ServerError}[status]
        assert isinstance(caught.value, expected)
        assert len(str(caught.value)) < 500


def test_too_deep_counts_levels_without_recursion() -> None:
    """The depth check walks iteratively: a structure deeper than the recursion limit is fine."""
    data: Any = []
    for _ in range(50_000):
        data = [data]
    assert too_deep(data)
    assert not too_deep({"a": [{"b": 1}]})


def test_decode_refuses_one_level_past_the_limit_whatever_the_brackets_count() -> None:
    """The bracket count only spares the walk: 32 levels decode, 33 do not, and brackets
    inside strings neither hide nor fake a level."""
    assert decode(b"[" * 32 + b"1" + b"]" * 32) is not None
    assert decode(b"[" * 33 + b"1" + b"]" * 33) is None
    assert decode(b'{"a": "' + b"[{" * 40 + b'"}') == {"a": "[{" * 40}


# -- provider text -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("\x1b[31mred\x1b[0m", "red"),
        ("\x1b]0;title\x07after", "after"),
        ("line\r\nINFO forged", "line INFO forged"),
        ("nul\x00here", "nul here"),
        ("bidi\u202egnp.exe", "bidi gnp.exe"),
        ("tab\tand  spaces", "tab and spaces"),
        ("ü ß 中文", "ü ß 中文"),
    ],
)
def test_clean_text(raw: str, clean: str) -> None:
    """Escape sequences go; control and format characters become spaces; runs fold to one."""
    assert clean_text(raw) == clean


async def test_provider_detail_is_cleaned_and_cut(session: aiohttp.ClientSession) -> None:
    """A 400 detail with escapes and 5,000 characters becomes one clean line of 300."""
    detail = "\x1b[2J" + "bad\n" * 1250
    async with tiny_server(_json(400, {"detail": detail})) as url:
        with pytest.raises(Rejected) as caught:
            await _client(session, url).create(body())
    assert caught.value.detail is not None
    assert len(caught.value.detail) == 300
    assert caught.value.detail.isprintable()
    assert str(caught.value).isprintable()


async def test_failed_task_error_and_status_are_cleaned(session: aiohttp.ClientSession) -> None:
    """The error of a failed task and an unknown status word are stored clean."""
    info = {"id": TASK, "status": "fail\x1b[8m", "error": {"code": "E\n1", "detail": "x\x07y"}}
    async with tiny_server(_json(200, {"task_info": info})) as url:
        task = await _client(session, url).get(TASK)
    assert task.raw_status == "fail"
    assert task.error is not None
    assert (task.error.code, task.error.detail) == ("E 1", "x y")


# -- video links ---------------------------------------------------------------------------------

PUBLIC = AddressPolicy("https://api.mulerouter.ai")
LOOPBACK = AddressPolicy("http://127.0.0.1:8808")


@pytest.mark.parametrize(
    ("url", "policy", "reason"),
    [
        ("http://[::1", PUBLIC, "not a valid URL"),
        ("https://a.example:99999/v.mp4", PUBLIC, "not a valid URL"),
        ("javascript:alert(1)", PUBLIC, "only http and https"),
        ("https:///v.mp4", PUBLIC, "no host"),
        (f"https://{'a' * 100}.example/v.mp4", PUBLIC, "bad host name"),
        ("http://127.0.0.1/v.mp4", PUBLIC, "loopback address"),
        ("http://[::1]/v.mp4", PUBLIC, "loopback address"),
        ("http://169.254.169.254/latest/meta-data/", PUBLIC, "link-local address"),
        ("http://169.254.169.254/latest/meta-data/", LOOPBACK, "link-local address"),
        ("http://[fe80::1]/v.mp4", LOOPBACK, "link-local address"),
        ("http://192.168.1.10/v.mp4", LOOPBACK, "private address"),
        ("http://0.0.0.0/v.mp4", PUBLIC, "address"),
    ],
)
def test_video_links_that_are_refused(url: str, policy: AddressPolicy, reason: str) -> None:
    """Invalid links, other schemes, and addresses inside the network are refused."""
    with pytest.raises(VideoRefused, match=reason):
        checked_host(url, policy)


@pytest.mark.parametrize(
    ("url", "policy", "host"),
    [
        ("https://cdn.example.com/v.mp4?sig=1", PUBLIC, "cdn.example.com"),
        ("http://8.8.8.8/v.mp4", PUBLIC, "8.8.8.8"),
        ("http://127.0.0.1:9/v.mp4", LOOPBACK, "127.0.0.1"),
        ("http://localhost:9/v.mp4", LOOPBACK, "localhost"),
    ],
)
def test_video_links_that_are_allowed(url: str, policy: AddressPolicy, host: str) -> None:
    """Public hosts always; loopback only when the base URL is loopback too (the simulator)."""
    assert checked_host(url, policy) == host


def test_address_kinds() -> None:
    """Mapped IPv4 addresses are judged as the IPv4 address they carry."""
    assert address_kind(ipaddress.ip_address("::ffff:169.254.169.254")) == "link-local"
    assert address_kind(ipaddress.ip_address("10.0.0.1")) == "private"
    assert address_kind(ipaddress.ip_address("1.1.1.1")) is None


async def test_a_host_name_that_resolves_inside_the_network_is_refused(
    session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """With a public base URL, `localhost` (a name, not an address) is looked up and refused."""
    seen: list[str] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        seen.append(request.path)
        return web.Response(body=MP4)

    async with tiny_server(handle) as url:
        port = url.rsplit(":", 1)[1]
        client = Client(session, base_url="https://api.mulerouter.ai", api_key=KEY)
        with pytest.raises(VideoRefused, match="loopback address"):
            await client.download(f"http://localhost:{port}/v.mp4", tmp_path / "v.mp4")
    assert seen == []


class _Answers(AbstractResolver):
    """A resolver whose names answer what the test says (no real lookup)."""

    def __init__(self, answers: Mapping[str, list[str]]) -> None:
        self.answers = answers

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            {"hostname": host, "host": a, "port": port, "family": family, "proto": 0, "flags": 0}
            for a in self.answers[host]
        ]

    async def close(self) -> None:
        pass


async def test_the_run_resolver_keeps_allowed_addresses_and_refuses_the_rest() -> None:
    """Public addresses are kept, inside ones dropped; the base URL's own host resolves as is."""
    inner = _Answers({
        "cdn.example": ["10.0.0.7", "8.8.8.8"],
        "metadata.example": ["169.254.169.254"],
        "api.internal": ["10.1.2.3"],
    })  # fmt: skip
    resolver = policy_resolver("https://API.internal/", inner)
    assert [r["host"] for r in await resolver.resolve("cdn.example")] == ["8.8.8.8"]
    with pytest.raises(RefusedAddress, match="link-local"):
        await resolver.resolve("metadata.example")
    assert [r["host"] for r in await resolver.resolve("api.internal")] == ["10.1.2.3"]


@pytest.mark.parametrize("guarded", [True, False])
async def test_a_name_that_answers_differently_when_connecting_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, guarded: bool
) -> None:
    """DNS rebinding: the check's lookup answered a public address (faked here by skipping it),
    the connection's lookup answers loopback. The run's session refuses to connect there."""

    async def looks_public(self: Downloader, host: str, url: str) -> None:
        return None

    monkeypatch.setattr(Downloader, "_check_host", looks_public)
    seen: list[str] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        seen.append(request.path)
        return web.Response(body=MP4)

    base = "https://api.mulerouter.ai"
    resolver = policy_resolver(base) if guarded else None
    async with tiny_server(handle) as url, open_session(resolver=resolver) as session:
        port = url.rsplit(":", 1)[1]
        client = Client(session, base_url=base, api_key=KEY)
        link = f"http://localhost:{port}/v.mp4"
        if not guarded:  # without the resolver the same link is fetched: the test can fail
            assert await client.download(link, tmp_path / "v.mp4") == len(MP4)
            assert seen == ["/v.mp4"]
            return
        with pytest.raises(VideoRefused, match="loopback address"):
            await client.download(link, tmp_path / "v.mp4")
    assert seen == []
    assert _files(tmp_path) == []


async def test_a_redirect_into_the_network_is_refused(
    session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """Each redirect hop is checked: a public-looking link sent on to 169.254.169.254 fails."""

    async def handle(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")

    async with tiny_server(handle) as url:
        with pytest.raises(VideoRefused, match="link-local"):
            await _client(session, url).download(f"{url}/v.mp4", tmp_path / "v.mp4")
    assert _files(tmp_path) == []


async def test_a_redirect_to_a_video_is_followed_without_the_key(
    session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """A redirect on the asset host is followed (checked), and the key is sent nowhere."""
    seen: dict[str, str | None] = {}

    async def handle(request: web.Request) -> web.StreamResponse:
        seen[request.path] = request.headers.get("Authorization")
        if request.path == "/old.mp4":
            raise web.HTTPFound("/new.mp4")
        return web.Response(body=MP4)

    async with tiny_server(handle) as url:
        size = await _client(session, url).download(f"{url}/old.mp4", tmp_path / "v.mp4")
    assert size == len(MP4)
    assert seen == {"/old.mp4": None, "/new.mp4": None}


async def test_the_api_never_follows_a_redirect(session: aiohttp.ClientSession) -> None:
    """A create answered with a redirect elsewhere is not followed: the key stays home."""
    followed: list[str] = []

    async def elsewhere(request: web.Request) -> web.StreamResponse:
        followed.append(request.headers.get("Authorization", ""))
        return web.json_response({"id": TASK, "status": "pending"}, status=202)

    async with tiny_server(elsewhere) as other:

        async def redirect(request: web.Request) -> web.StreamResponse:
            raise web.HTTPTemporaryRedirect(f"{other}/steal")

        async with tiny_server(redirect) as url:
            with pytest.raises(ApiError):
                await _client(session, url).create(body())
    assert followed == []


# -- video content -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"<!doctype html><title>Login</title>", "not an MP4 video"),
        (b"", "empty file"),
        (b"\0\0\0\x18ftyp"[:6], "not an MP4"),
    ],
)
async def test_a_video_that_is_not_an_mp4_is_refused(
    session: aiohttp.ClientSession, tmp_path: Path, payload: bytes, reason: str
) -> None:
    """A 200 whose body does not start with an ftyp box is refused and leaves no file."""

    async def handle(request: web.Request) -> web.StreamResponse:
        return web.Response(body=payload)

    async with tiny_server(handle) as url:
        with pytest.raises(VideoRefused, match=reason):
            await _client(session, url).download(f"{url}/v.mp4", tmp_path / "v.mp4")
    assert _files(tmp_path) == []


@pytest.mark.parametrize("declared", [True, False])
async def test_a_video_over_the_cap_is_refused(
    session: aiohttp.ClientSession, tmp_path: Path, declared: bool
) -> None:
    """Over --max-video-mb, declared or streamed: refused, nothing left on disk."""
    data = MP4 + bytes(300_000)

    async def handle(request: web.Request) -> web.StreamResponse:
        if declared:
            return web.Response(body=data)
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(data), 65536):
            await response.write(data[start : start + 65536])
        return response

    async with tiny_server(handle) as url:
        client = _client(session, url, limits=Limits(max_video_bytes=200_000))
        with pytest.raises(VideoRefused, match="larger than the"):
            await client.download(f"{url}/v.mp4", tmp_path / "v.mp4")
    assert _files(tmp_path) == []


# -- the seam ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "path"),
    [
        ("wan2.5-i2v-preview", "/vendors/alibaba/v1/wan2.5-i2v-preview/generation"),
        ("wan2.6-i2v", "/vendors/alibaba/v1/wan2.6-i2v/generation"),
        ("veo3-spark", "/vendors/mulerouter/v1/veo3-spark/generation"),
    ],
)
def test_generation_path_from_a_model_name(model: str, path: str) -> None:
    """Without a registry entry, the path is built from the name (MuleRouter's own: -spark)."""
    assert generation_path(model) == path


@pytest.mark.parametrize("model", ["", "a/b", "../x", "wan 2", "wan?x=1"])
def test_a_model_name_unfit_for_a_path_is_an_input_error(model: str) -> None:
    """A model name that would change the path is refused up front."""
    with pytest.raises(InputError, match="not usable in a URL path"):
        generation_path(model)


async def test_a_call_can_name_its_model(session: aiohttp.ClientSession) -> None:
    """create and get take the row's model; the status path follows the create path."""
    seen: list[str] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        seen.append(f"{request.method} {request.path}")
        return web.json_response({"task_info": {"id": TASK, "status": "pending"}}, status=202)

    async with tiny_server(handle) as url:
        client = _client(session, url)
        await client.create(body(), model="wan2.6-i2v")
        await client.get(TASK, model="wan2.6-i2v")
    assert seen == [
        "POST /vendors/alibaba/v1/wan2.6-i2v/generation",
        f"GET /vendors/alibaba/v1/wan2.6-i2v/generation/{TASK}",
    ]


class DashScopeSketch:
    """Alibaba's own envelope, only as far as the seam needs: proof that it fits."""

    name = "dashscope"
    _STATES: ClassVar[dict[str, TaskState]] = {
        "SUCCEEDED": TaskState.SUCCEEDED,
        "FAILED": TaskState.FAILED,
    }

    def create_request(self, body: Mapping[str, Any], model: str) -> Request:
        fields = {"input": {"prompt": body["prompt"], "img_url": body["image"]}}
        return Request(
            "POST",
            "/api/v1/services/aigc/video-generation/video-synthesis",
            json={"model": model, **fields, "parameters": {}},
            headers={"X-DashScope-Async": "enable"},
        )

    def status_request(self, task_id: str, model: str) -> Request:
        return Request("GET", f"/api/v1/tasks/{task_id}")

    def parse_task(self, data: Any, *, trace_id: str | None) -> TaskInfo | None:
        output = data.get("output") if isinstance(data, dict) else None
        if not isinstance(output, dict) or checked_task_id(output.get("task_id")) is None:
            return None
        status = clean_text(output.get("task_status", ""), 40)
        url = output.get("video_url")
        return TaskInfo(
            task_id=str(output["task_id"]),
            state=self._STATES.get(status, TaskState.IN_PROGRESS),
            raw_status=status,
            videos=(url,) if isinstance(url, str) else (),
            trace_id=trace_id,
        )

    def classify(
        self,
        op: Any,
        status: int,
        raw: bytes,
        headers: Mapping[str, str],
        *,
        task_id: str | None,
        where: str,
    ) -> ApiError:
        return Rejected(f"dashscope refused (HTTP {status})", http_status=status)

    def trace_id(self, headers: Mapping[str, str]) -> str | None:
        return None


async def test_a_second_envelope_fits_the_seam(
    session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """DashScope's shape (async header, output.task_id, SUCCEEDED, video_url) over one client."""
    seen: list[tuple[str, str | None]] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        seen.append((request.path, request.headers.get("X-DashScope-Async")))
        if request.method == "POST":
            return web.json_response({"output": {"task_id": "ds-1", "task_status": "PENDING"}})
        if request.path.endswith(".mp4"):
            return web.Response(body=MP4)
        video = f"http://{request.host}/out/ds-1.mp4"
        return web.json_response(
            {"output": {"task_id": "ds-1", "task_status": "SUCCEEDED", "video_url": video}}
        )

    async with tiny_server(handle) as url:
        client = _client(session, url, provider=DashScopeSketch())
        created = await client.create(body())
        done = await client.get(created.task_id)
        size = await client.download(done.videos[0], tmp_path / "v.mp4")
    assert (created.state, done.state) == (TaskState.IN_PROGRESS, TaskState.SUCCEEDED)
    assert size == len(MP4)
    assert seen[0] == ("/api/v1/services/aigc/video-generation/video-synthesis", "enable")
    assert seen[1][0] == "/api/v1/tasks/ds-1"
