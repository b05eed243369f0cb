"""The simulator: seeded faults with exact counts, limits, validation, lifecycle, endpoints."""

from __future__ import annotations

import io
import json
import logging
import random
import re
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from mutagen.mp4 import MP4
from simhelpers import body, image_data_uri, predicted_hits, sim_and_client

from batchwan.errors import ApiError, RateLimited, ServerError, TransportError
from batchwan.provider.client import Client, open_session
from batchwan.sim.faults import CREATE_FAULTS
from batchwan.sim.mp4 import tiny_mp4
from batchwan.sim.rules import check_create_body
from batchwan.sim.simulator import RunningSimulator, SimConfig, serve, serve_in_thread

N = 100
GENERATION = "/vendors/alibaba/v1/wan2.5-i2v-preview/generation"


class FakeClock:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def clocked(config: SimConfig) -> AsyncIterator[tuple[RunningSimulator, Client, FakeClock]]:
    """A simulator on a hand-stepped clock, and a client for it."""
    clock = FakeClock()
    async with serve(config, clock=clock) as running, open_session() as session:
        yield running, Client(session, base_url=running.base_url, api_key=None), clock


async def outcome_of_create(client: Client, n: int) -> str | None:
    """What the n-th create met: None when accepted, else the fault as the client saw it."""
    try:
        await client.create(body(seed=n))
    except RateLimited as exc:
        return "429" if exc.retry_after is not None else "429_bare"
    except ServerError as exc:
        return str(exc.http_status)
    except TransportError:
        return "drop"
    return None


# -- faults fire as configured, exactly as the seed predicts ------------------------------------


@pytest.mark.parametrize(("name", "field"), CREATE_FAULTS)
async def test_each_create_fault_hits_exactly_the_predicted_requests(name: str, field: str) -> None:
    """rate=0.3 over 100 creates hits exactly the draws of Random(seed) below 0.3."""
    config = SimConfig(seed=11, **{field: 0.3})
    async with sim_and_client(config) as (running, client):
        outcomes = [await outcome_of_create(client, i) for i in range(N)]
        stats = running.sim.stats()
    expected = predicted_hits(11, 0.3, N)
    seen_as = "drop" if name.startswith("drop") else name
    assert [i for i, o in enumerate(outcomes) if o == seen_as] == expected
    assert [i for i, o in enumerate(outcomes) if o is not None] == expected
    assert stats["faults"][name] == len(expected)
    assert stats["creates_received"] == N
    assert 15 < len(expected) < 45  # the seeded RNG behaves like a rate of 0.3


async def test_create_fault_bands_follow_the_documented_order() -> None:
    """With several rates set, one draw per create falls into consecutive bands in order."""
    config = SimConfig(seed=5, rate_429=0.1, rate_500=0.1, rate_503=0.2, drop_after_rate=0.1)
    async with sim_and_client(config) as (_, client):
        outcomes = [await outcome_of_create(client, i) for i in range(N)]
    rng = random.Random(5)
    expected = []
    for _ in range(N):
        u = rng.random()
        bands = [("429", 0.1), ("500", 0.2), ("503", 0.4), ("drop", 0.5)]
        expected.append(next((n for n, edge in bands if u < edge), None))
    assert outcomes == expected


async def test_same_seed_same_sequence_other_seed_other_sequence() -> None:
    """A rerun with the same seed meets the same faults; another seed meets others."""

    async def run(seed: int) -> tuple[list[str | None], list[dict[str, Any]]]:
        config = SimConfig(seed=seed, rate_503=0.3, rate_429=0.1, fail_rate=0.5)
        async with sim_and_client(config) as (running, client):
            outcomes = [await outcome_of_create(client, i) for i in range(40)]
            return outcomes, running.sim.tasks()

    first, first_tasks = await run(3)
    again, again_tasks = await run(3)
    other, _ = await run(4)
    assert first == again
    assert [(t["id"], t["fate"]) for t in first_tasks] == [
        (t["id"], t["fate"]) for t in again_tasks
    ]
    assert first != other


async def test_fates_follow_the_fate_stream() -> None:
    """fail_rate and no_video_rate decide each task's end from their own seeded stream."""
    config = SimConfig(seed=2, fail_rate=0.3, no_video_rate=0.2)
    async with sim_and_client(config) as (running, client):
        infos = [await client.get((await client.create(body(seed=i))).task_id) for i in range(50)]
        stats = running.sim.stats()
    rng = random.Random("2:fate")
    draws = [rng.random() for _ in range(50)]
    expected = ["failed" if u < 0.3 else "no_video" if u < 0.5 else "completed" for u in draws]
    assert [t["fate"] for t in running.sim.tasks()] == expected
    assert stats["tasks_by_fate"] == {k: expected.count(k) for k in set(expected)}
    for info, fate in zip(infos, expected, strict=True):
        assert info.state.value == ("failed" if fate == "failed" else "succeeded")
        assert bool(info.videos) is (fate == "completed")
        if fate == "failed":
            assert info.error is not None
            assert info.error.code in range(3001, 3006)


async def test_error_after_create_share_is_seeded() -> None:
    """Of 500/502/504 creates, the tasks made anyway are exactly the created-stream's hits."""
    config = SimConfig(seed=9, rate_500=1.0, error_after_create_rate=0.5)
    async with sim_and_client(config) as (running, client):
        for i in range(30):
            await outcome_of_create(client, i)
        stats = running.sim.stats()
    made = len(predicted_hits("9:created", 0.5, 30))
    assert stats["tasks_created"] == made
    assert stats["tasks_by_fate"] == {"error_after_create": made}


async def test_slow_answers_are_counted_exactly() -> None:
    """slow_rate marks exactly the slow stream's hits (a zero delay keeps the test quick)."""
    async with sim_and_client(SimConfig(seed=1, slow_rate=0.25)) as (running, client):
        for i in range(40):
            await client.create(body(seed=i))
        assert running.sim.stats()["faults"]["slow"] == len(predicted_hits("1:slow", 0.25, 40))


async def _get_codes(client: Client, task_id: str, count: int) -> list[int]:
    """The HTTP status of each of ``count`` gets of one task (200 for an answer)."""
    codes = []
    for _ in range(count):
        try:
            await client.get(task_id)
            codes.append(200)
        except ApiError as exc:
            codes.append(exc.http_status or 0)
    return codes


async def test_poll_faults_are_counted_exactly() -> None:
    """poll_fault_rate fails exactly the predicted gets, each 500 or 503 as drawn."""
    async with sim_and_client(SimConfig(seed=4, poll_fault_rate=0.4)) as (running, client):
        task = await client.create(body())
        statuses = await _get_codes(client, task.task_id, 60)
    rng = random.Random("4:poll")
    expected = []
    for _ in range(60):
        expected.append(200 if rng.random() >= 0.4 else 500 if rng.random() < 0.5 else 503)
    assert statuses == expected
    faults = running.sim.stats()["faults"]
    assert (faults["poll_500"], faults["poll_503"]) == (expected.count(500), expected.count(503))


async def test_not_found_polls_counts_per_task() -> None:
    """Each new task answers 404 to exactly its first N gets."""
    async with sim_and_client(SimConfig(not_found_polls=3)) as (running, client):
        for i in range(2):
            task = await client.create(body(seed=i))
            assert await _get_codes(client, task.task_id, 5) == [404, 404, 404, 200, 200]
        assert running.sim.stats()["faults"]["404_new_task"] == 6


# -- limits: 429 exactly when exceeded, and not before ------------------------------------------


async def test_in_flight_limit_with_hold() -> None:
    """With 3 held tasks the 4th create is refused; releasing one lets exactly one more in."""
    async with sim_and_client(SimConfig(hold=True, max_in_flight=3)) as (running, client):
        tasks = [await client.create(body(seed=i)) for i in range(3)]
        with pytest.raises(RateLimited) as caught:
            await client.create(body(seed=3))
        assert caught.value.retry_after == 1.0
        running.sim.release(tasks[0].task_id)
        await client.create(body(seed=4))
        with pytest.raises(RateLimited):
            await client.create(body(seed=5))
        stats = running.sim.stats()
    assert stats["faults"]["limit_in_flight"] == 2
    assert stats["tasks_created"] == 4
    assert stats["max_in_flight_seen"] == 3
    assert stats["in_flight"] == 3


async def test_in_flight_counts_until_the_task_finishes() -> None:
    """A task is in flight until its processing ends on the clock, then frees its place."""
    config = SimConfig(max_in_flight=2, pending_seconds=1, processing_seconds=2)
    async with clocked(config) as (running, client, clock):
        await client.create(body(seed=1))
        clock.now += 1.5
        await client.create(body(seed=2))
        clock.now += 1.4999  # first task ends at +3.0: still in flight
        with pytest.raises(RateLimited):
            await client.create(body(seed=3))
        clock.now += 0.0001
        await client.create(body(seed=4))
        assert running.sim.stats()["max_in_flight_seen"] == 2


async def test_per_second_limit_exactly_at_the_window_edge() -> None:
    """max 2/s: a 3rd create in (t-1, t] is refused; at exactly t0+1.0 it is accepted."""
    async with clocked(SimConfig(max_creates_per_second=2)) as (running, client, clock):
        await client.create(body(seed=1))
        clock.now += 0.5
        await client.create(body(seed=2))
        with pytest.raises(RateLimited) as caught:
            await client.create(body(seed=3))
        assert caught.value.retry_after == 1.0
        clock.now += 0.4999  # the first create is still inside the window
        with pytest.raises(RateLimited):
            await client.create(body(seed=4))
        clock.now += 0.0001  # now exactly one second after the first: it has left the window
        await client.create(body(seed=5))
        stats = running.sim.stats()
    assert stats["faults"]["limit_per_second"] == 2
    assert stats["max_creates_in_any_second"] == 2


async def test_per_second_limit_on_the_real_clock() -> None:
    """Sent quickly, the first max creates are accepted and the next one is refused."""
    async with sim_and_client(SimConfig(max_creates_per_second=3)) as (running, client):
        for i in range(3):
            await client.create(body(seed=i))
        with pytest.raises(RateLimited):
            await client.create(body(seed=9))
        assert running.sim.stats()["max_creates_in_any_second"] == 3


# -- lifecycle, vocabularies, timestamps ----------------------------------------------------------


@pytest.mark.parametrize(
    ("vocabulary", "words"),
    [
        ("mulerouter", ["pending", "processing", "completed"]),
        ("alibaba", ["queued", "running", "succeeded"]),
    ],
)
async def test_task_walks_through_its_statuses(vocabulary: str, words: list[str]) -> None:
    """pending, then processing, then done, in the configured vocabulary, by the clock."""
    config = SimConfig(status_vocabulary=vocabulary, pending_seconds=10, processing_seconds=20)
    async with clocked(config) as (_, client, clock):
        created = await client.create(body())
        seen = [created.raw_status]
        clock.now += 10
        seen.append((await client.get(created.task_id)).raw_status)
        clock.now += 20
        done = await client.get(created.task_id)
        seen.append(done.raw_status)
    assert seen == words
    assert done.updated_at is not None
    assert created.created_at is not None
    assert round((done.updated_at - created.created_at).total_seconds()) == 30


async def test_mixed_vocabulary_and_both_timestamp_forms() -> None:
    """'mixed' serves both vocabularies and both timestamp forms across tasks."""
    async with sim_and_client(SimConfig(seed=8)) as (running, _):
        async with aiohttp.ClientSession() as http:
            for i in range(20):
                async with http.post(running.base_url + GENERATION, json=body(seed=i)) as r:
                    assert r.status == 202
                    info = (await r.json())["task_info"]
                    assert info["status"] in ("pending", "queued")
                    assert re.fullmatch(
                        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|\.\d{6}\+00:00)", info["created_at"]
                    )
        vocabularies = {t["vocabulary"] for t in running.sim.tasks()}
        stamps = {t["created_at"][-1] for t in running.sim.tasks()}
    assert vocabularies == {"mulerouter", "alibaba"}
    assert stamps == {"Z", "0"}


async def test_hold_keeps_tasks_processing_until_released() -> None:
    """Held tasks stay processing; release(id) frees one, release() frees all."""
    async with sim_and_client(SimConfig(hold=True, status_vocabulary="mulerouter")) as (r, c):
        ids = [(await c.create(body(seed=i))).task_id for i in range(3)]
        assert [(await c.get(i)).raw_status for i in ids] == ["processing"] * 3
        r.sim.release(ids[1])
        assert [(await c.get(i)).raw_status for i in ids] == [
            "processing",
            "completed",
            "processing",
        ]
        r.sim.release()
        assert {(await c.get(i)).raw_status for i in ids} == {"completed"}
        with pytest.raises(KeyError):
            r.sim.release("no-such-task")


async def test_stats_count_duplicates_gets_and_downloads() -> None:
    """Identical bodies count as duplicate payloads; gets and video downloads are counted."""
    async with sim_and_client() as (running, client):
        first = await client.create(body())
        await client.create(dict(reversed(list(body().items()))))  # same JSON, keys reordered
        await client.create(body(seed=1))
        info = await client.get(first.task_id)
        async with aiohttp.ClientSession() as http, http.get(info.videos[0]) as r:
            assert r.status == 200
            assert r.headers["Content-Type"] == "video/mp4"
        stats = running.sim.stats()
    assert (stats["tasks_created"], stats["duplicate_payloads"]) == (3, 1)
    assert (stats["gets"], stats["downloads"]) == (1, 1)
    hashes = [t["payload_hash"] for t in running.sim.tasks()]
    assert hashes[0] == hashes[1] != hashes[2]


# -- validation as the service does it -------------------------------------------------------------

LONG = "x" * 2001


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({}, None),
        ({"prompt": None}, "prompt: field required"),
        ({"prompt": "  "}, "prompt: field required"),
        ({"prompt": LONG}, "prompt: 2001 characters is over the limit of 2000"),
        ({"prompt": LONG[:2000]}, None),
        ({"negative_prompt": "n" * 501}, "negative_prompt: 501 characters"),
        ({"negative_prompt": "n" * 500}, None),
        ({"image": None}, "image: field required"),
        ({"image": "ftp://host/a.png"}, "image: must be an http(s) URL or data:image"),
        ({"image": "data:image/png;base64,@@@"}, "image: the base64 data cannot be decoded"),
        ({"image": "data:image/png;base64,aGVsbG8="}, "image: the data is not a readable image"),
        ({"image": image_data_uri(300, 400)}, "image: width 300 px is below 360"),
        ({"image": image_data_uri(400, 2001)}, "image: height 2001 px is above 2000"),
        ({"image": image_data_uri(360, 2000, fmt="JPEG")}, None),
        ({"image": image_data_uri(400, 400, fmt="GIF")}, "image: format GIF is not accepted"),
        ({"image": image_data_uri(400, 400, mode="RGBA")}, "image: PNG with transparency"),
        ({"image": image_data_uri(400, 400, fmt="WEBP")}, None),
        ({"resolution": "4K"}, "resolution: must be one of 480P, 720P, 1080P"),
        ({"resolution": "1080P"}, None),
        ({"duration": 7}, "duration: must be 5 or 10, got 7"),
        ({"duration": "5"}, "duration: must be 5 or 10"),
        ({"duration": True}, "duration: must be 5 or 10"),
        ({"duration": 10}, None),
        ({"seed": -1}, "seed: must be an integer from 0 to 2147483647"),
        ({"seed": 2147483648}, "seed: must be an integer"),
        ({"seed": 2147483647}, None),
        ({"audio": "true"}, "audio: must be a JSON boolean"),
        ({"prompt_extend": 1}, "prompt_extend: must be a JSON boolean"),
        ({"safety_filter": False, "audio": False}, None),
        ({"audio_url": "file:///etc/passwd"}, "audio_url: must be an http(s) URL"),
    ],
)
def test_create_rules(changes: dict[str, Any], reason: str | None) -> None:
    """Each rule of the create table refuses what the service refuses, and no more."""
    found = check_create_body(body(**changes))
    if reason is None:
        assert found is None
    else:
        assert found is not None
        assert found.startswith(reason)


@pytest.mark.parametrize(("raw", "detail"), [(b"{nope", "not valid JSON"), (b"[1]", "JSON object")])
async def test_400_envelope_shape(raw: bytes, detail: str) -> None:
    """A refused create answers 400 with the already-failed envelope, code 2001."""
    async with (
        sim_and_client() as (running, _),
        aiohttp.ClientSession() as http,
        http.post(running.base_url + GENERATION, data=raw) as r,
    ):
        assert r.status == 400
        answer = await r.json()
    info = answer["task_info"]
    assert info["status"] == "failed"
    assert info["error"]["code"] == 2001
    assert info["error"]["title"] == "Invalid Request"
    assert detail in info["error"]["detail"]


# -- the HTTP surface -----------------------------------------------------------------------------


async def test_traceparent_on_every_answer() -> None:
    """Every answer, errors and control endpoints included, carries a W3C Traceparent."""
    config = SimConfig(api_key="k")
    async with sim_and_client(config) as (running, _), aiohttp.ClientSession() as http:
        for method, path in [
            ("POST", GENERATION),
            ("GET", GENERATION + "/x"),
            ("GET", "/_sim/stats"),
            ("GET", "/nowhere"),
            ("GET", "/_sim/videos/x.mp4"),
        ]:
            async with http.request(method, running.base_url + path) as r:
                await r.read()
                assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", r.headers["Traceparent"])


async def test_videos_need_no_key_but_the_api_does() -> None:
    """The asset host serves without auth; the API answers 401 {"detail"} without the key."""
    async with sim_and_client(SimConfig(api_key="k"), api_key="k") as (running, client):
        info = await client.get((await client.create(body())).task_id)
        async with aiohttp.ClientSession() as http:
            async with http.get(info.videos[0]) as r:
                assert r.status == 200
                assert (await r.read())[4:8] == b"ftyp"
            async with http.get(running.base_url + GENERATION + "/" + info.task_id) as r:
                assert r.status == 401
                assert await r.json() == {"detail": "missing Authorization header"}
            async with http.get(running.base_url + "/_sim/videos/nope.mp4") as r:
                assert r.status == 404
    assert running.sim.stats()["unauthorized_401"] == 1


async def test_no_video_for_unfinished_or_videoless_tasks() -> None:
    """A held task or a success without video has nothing at /_sim/videos."""
    for config in (SimConfig(hold=True), SimConfig(no_video_rate=1.0)):
        async with sim_and_client(config) as (running, client):
            task = await client.create(body())
            async with aiohttp.ClientSession() as http:
                url = f"{running.base_url}/_sim/videos/{task.task_id}.mp4"
                async with http.get(url) as r:
                    assert r.status == 404


async def test_drops_and_timeouts_log_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """Dropped connections and clients that gave up leave no error in the server's log."""
    caplog.set_level(logging.DEBUG)
    async with sim_and_client(SimConfig(drop_before_rate=0.5, drop_after_rate=0.5)) as (_, c):
        for i in range(6):
            with pytest.raises(TransportError):
                await c.create(body(seed=i))
    slow = SimConfig(slow_rate=1.0, slow_seconds=30)
    async with sim_and_client(slow, client_timeout=0.2) as (_, c):
        with pytest.raises(TransportError):
            await c.create(body())
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert noisy == []


async def test_control_endpoints_for_other_processes() -> None:
    """/_sim/stats, /_sim/tasks and POST /_sim/release work over HTTP."""
    async with sim_and_client(SimConfig(hold=True)) as (running, client):
        task = await client.create(body())
        async with aiohttp.ClientSession() as http:
            base = running.base_url
            async with http.post(f"{base}/_sim/release", json={"task_id": "nope"}) as r:
                assert r.status == 404
            async with http.post(f"{base}/_sim/release", json={"task_id": task.task_id}) as r:
                assert await r.json() == {"released": task.task_id}
            async with http.get(f"{base}/_sim/tasks") as r:
                (listed,) = await r.json()
            async with http.get(f"{base}/_sim/stats") as r:
                stats = await r.json()
    assert listed["id"] == task.task_id
    assert listed["status"] == "completed"
    assert listed["prompt"] == body()["prompt"]
    assert stats["tasks_created"] == 1


def test_serve_in_thread_for_sync_callers() -> None:
    """A simulator in a background thread answers plain urllib; stats and release are callable."""
    with serve_in_thread(SimConfig(hold=True, status_vocabulary="alibaba")) as running:
        request = urllib.request.Request(
            running.base_url + GENERATION,
            data=json.dumps(body()).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as r:
            assert r.status == 202
            task_id = json.load(r)["task_info"]["id"]
        running.sim.release()
        with urllib.request.urlopen(f"{running.base_url}{GENERATION}/{task_id}", timeout=10) as r:
            assert json.load(r)["task_info"]["status"] == "succeeded"
        assert running.sim.stats()["tasks_created"] == 1


def test_serve_in_thread_reports_a_busy_port() -> None:
    """A port already taken fails the start in the caller's thread."""
    with serve_in_thread(SimConfig()) as first, pytest.raises(OSError, match="in use"):  # noqa: SIM117 - the second start must be inside the first
        with serve_in_thread(SimConfig(), port=first.port):
            pass


@pytest.mark.parametrize(
    "changes",
    [
        {"fail_rate": 1.5},
        {"rate_500": 0.6, "rate_503": 0.6},
        {"fail_rate": 0.6, "no_video_rate": 0.6},
        {"pending_seconds": -1},
        {"max_in_flight": 0},
        {"status_vocabulary": "klingon"},
    ],
)
def test_config_refuses_nonsense(changes: dict[str, Any]) -> None:
    """Impossible settings are refused when the config is made."""
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        SimConfig(**changes)


def test_config_repr_hides_the_key() -> None:
    """The key is not in the config's repr."""
    assert "sekrit" not in repr(SimConfig(api_key="sekrit"))


# -- the videos ------------------------------------------------------------------------------------


def test_tiny_mp4_parses_as_mp4() -> None:
    """The simulator's video is an MP4 mutagen reads, about a second long."""
    data = tiny_mp4("task-1")
    assert data[4:8] == b"ftyp"
    assert MP4(io.BytesIO(data)).info.length == pytest.approx(1.0)
    assert tiny_mp4("task-2") != data
    assert MP4(io.BytesIO(tiny_mp4("x", seconds=2.5))).info.length == pytest.approx(2.5)
