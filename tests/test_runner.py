"""The pool in process, against the simulator over loopback, with a spy on the real client."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from unittest import mock

from PIL import Image

from batchwan.checks.validation import build_body, check_rows
from batchwan.errors import RateLimited
from batchwan.pool.runner import Runner, RunOptions
from batchwan.provider.client import Client, open_session
from batchwan.sheet.jobfile import load_source
from batchwan.sheet.loader import read_sheet
from batchwan.sim.simulator import SimConfig, serve
from batchwan.store.base import Claim
from batchwan.store.ledger import Ledger
from batchwan.values import CheckedRow, Status, TaskInfo
from tests.runhelpers import write_sheet


class CreateSpy:
    """Wraps the real client and notes, on the loop's clock, when each create went and ended."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.calls: list[tuple[float, float, str]] = []  # (sent, answered, outcome)

    async def create(self, body: dict[str, Any], *, model: str | None = None) -> TaskInfo:
        """Send the create through the real client and note when it went and how it ended."""
        loop = asyncio.get_running_loop()
        sent = loop.time()
        try:
            info = await self.client.create(body, model=model)
        except RateLimited:
            self.calls.append((sent, loop.time(), "429"))
            raise
        self.calls.append((sent, loop.time(), "ok"))
        return info

    async def get(self, task_id: str, *, model: str | None = None) -> TaskInfo:
        """Pass the lookup through."""
        return await self.client.get(task_id, model=model)

    async def download(self, url: str, dest: Path, *, sync_folder: bool = True) -> int:
        """Pass the download through."""
        return await self.client.download(url, dest, sync_folder=sync_folder)


def _rows(tmp_path: Path, count: int) -> list[CheckedRow]:
    spec = load_source(write_sheet(tmp_path, count))
    return check_rows(read_sheet(spec.sheet), spec)


def _open(tmp_path: Path, rows: list[CheckedRow]) -> Ledger:
    ledger = Ledger(tmp_path / "run")
    ledger.claim(tmp_path / "sheet.csv", "wan2.5-i2v-preview")
    ledger.sync_sheet(rows, [0.25] * len(rows), [])
    return ledger


def _note_gates(ledger: Ledger, gates: list[float]) -> None:
    """Spy on the durable mark before each create: the moment a worker passes the gate."""
    begin = ledger.begin_create

    async def noting(key: str, **options: Any) -> Claim:
        gates.append(asyncio.get_running_loop().time())
        return await begin(key, **options)

    ledger.begin_create = noting  # type: ignore[method-assign]  # a spy, the call goes through


async def _run(
    tmp_path: Path,
    config: SimConfig,
    options: RunOptions,
    count: int,
    gates: list[float] | None = None,
) -> Any:
    rows = _rows(tmp_path, count)
    ledger = _open(tmp_path, rows)
    if gates is not None:
        _note_gates(ledger, gates)
    try:
        async with serve(config) as sim, open_session() as session:
            spy = CreateSpy(Client(session, base_url=sim.base_url, api_key=None))
            runner = Runner(ledger, spy, options, body_for=build_body)
            outcome = await runner.run(rows)
            return outcome, spy, ledger.records(), sim.sim.stats()
    finally:
        ledger.close()


async def test_one_429_pauses_every_worker_for_its_retry_after(tmp_path: Path) -> None:
    """After a 429 with Retry-After, no worker starts a create until that pause has passed.

    A create that had already passed the gate when the 429 arrived may still go out; what is
    pinned is that no worker passes the gate (the durable mark before a send) during a pause.
    """
    config = SimConfig(seed=1, rate_429=0.15, retry_after_seconds=0.4)
    options = RunOptions(concurrency=8, rate=1000, poll_interval=0.02, download=False)
    gates: list[float] = []
    _, spy, records, stats = await _run(tmp_path, config, options, 40, gates)
    refusals = [answered for _, answered, outcome in spy.calls if outcome == "429"]
    assert refusals, "the seeded simulator refused some creates"
    for refused_at in refusals:
        later = [gate for gate in gates if gate > refused_at]
        assert all(gate >= refused_at + 0.4 - 0.01 for gate in later)
    assert {r.status for r in records} == {Status.SUCCEEDED}
    assert stats["duplicate_payloads"] == 0


async def test_retry_after_is_capped(tmp_path: Path) -> None:
    """A Retry-After of an hour is capped by retry_after_cap, so the run goes on."""
    config = SimConfig(seed=2, rate_429=0.3, retry_after_seconds=3600)
    options = RunOptions(concurrency=4, rate=1000, poll_interval=0.02, download=False,
                         retry_after_cap=0.05)  # fmt: skip
    outcome, spy, records, _ = await asyncio.wait_for(
        _run(tmp_path, config, options, 12), timeout=30
    )
    assert outcome.stop is None
    assert any(o == "429" for _, _, o in spy.calls)
    assert {r.status for r in records} == {Status.SUCCEEDED}


async def test_a_task_past_its_deadline_stays_running_with_a_note(tmp_path: Path) -> None:
    """A task that never ends is left `running` (collectable later) once its deadline passes."""
    config = SimConfig(hold=True)
    options = RunOptions(concurrency=2, rate=1000, poll_interval=0.02, task_deadline=0.3)
    outcome, _, records, stats = await asyncio.wait_for(
        _run(tmp_path, config, options, 2), timeout=30
    )
    assert outcome.stop is None
    assert stats["tasks_created"] == 2
    assert [r.status for r in records] == [Status.RUNNING, Status.RUNNING]
    assert all(r.task_id and "run again to collect it" in (r.error or "") for r in records)


async def test_concurrency_counts_tasks_found_running_at_start(tmp_path: Path) -> None:
    """Tasks still running from an earlier run take their places in --concurrency."""
    rows = _rows(tmp_path, 6)
    ledger = _open(tmp_path, rows[:3])
    try:
        async with serve(SimConfig(hold=True, max_in_flight=3)) as sim, open_session() as s:
            client = Client(s, base_url=sim.base_url, api_key=None)
            options = RunOptions(concurrency=3, rate=1000, poll_interval=0.02)
            no_wait = RunOptions(concurrency=3, rate=1000, poll_interval=0.02, wait=False)
            await Runner(ledger, client, no_wait, body_for=build_body).run(rows[:3])
            assert sim.sim.stats()["tasks_created"] == 3
            ledger.sync_sheet(rows, [0.25] * len(rows), [])
            releaser = asyncio.create_task(_keep_releasing(sim.sim))
            try:
                second = Runner(ledger, client, options, body_for=build_body)
                await asyncio.wait_for(second.run(rows), timeout=30)
            finally:
                releaser.cancel()
            stats = sim.sim.stats()
        records = ledger.records()
    finally:
        ledger.close()
    assert stats["max_in_flight_seen"] <= 3
    assert stats["faults"]["limit_in_flight"] == 0  # the simulator never had to refuse one
    assert stats["tasks_created"] == 6
    assert {r.status for r in records} == {Status.SUCCEEDED}


async def _keep_releasing(sim: Any) -> None:
    """Release held tasks again and again, the first time only after the run has started."""
    await asyncio.sleep(0.3)
    while True:
        sim.release()
        await asyncio.sleep(0.02)


async def test_an_image_gone_before_submit_leaves_the_row_pending(tmp_path: Path) -> None:
    """An image deleted after validation: the row stays pending and says how to mend it;
    with the file back, the next run sends it."""
    image = tmp_path / "frame.png"
    Image.new("RGB", (640, 360), (200, 120, 40)).save(image)
    kept = image.read_bytes()
    sheet = tmp_path / "s.csv"
    sheet.write_text("prompt,image\na desert at noon,frame.png\n", encoding="utf-8")
    spec = load_source(sheet)
    rows = check_rows(read_sheet(spec.sheet), spec)
    ledger = _open(tmp_path, rows)
    options = RunOptions(poll_interval=0.02, download=False)
    try:
        async with serve(SimConfig()) as sim, open_session() as session:
            client = Client(session, base_url=sim.base_url, api_key=None)
            image.unlink()
            await Runner(ledger, client, options, body_for=build_body).run(rows)
            gone = ledger.records()[0]
            image.write_bytes(kept)
            await Runner(ledger, client, options, body_for=build_body).run(rows)
            back = ledger.records()[0]
            created = sim.sim.stats()["tasks_created"]
    finally:
        ledger.close()
    assert gone.status is Status.PENDING
    assert gone.attempts == 0
    assert "put the file back and run again" in (gone.error or "")
    assert back.status is Status.SUCCEEDED
    assert created == 1


async def test_a_task_the_provider_keeps_not_finding_fails_as_lost(tmp_path: Path) -> None:
    """Polls answered 404 again and again: after a few the row fails, saying the task is lost."""
    config = SimConfig(not_found_polls=1000)
    options = RunOptions(poll_interval=0.02, download=False, not_found_limit=4)
    _, _, records, stats = await asyncio.wait_for(_run(tmp_path, config, options, 2), timeout=30)
    assert [r.status for r in records] == [Status.FAILED, Status.FAILED]
    assert all("does not know task" in (r.error or "") for r in records)
    assert stats["faults"]["404_new_task"] == 8  # 4 lookups for each of the 2 tasks


def test_videos_are_named_by_the_sheets_id_else_by_the_task_id(tmp_path: Path) -> None:
    """`<row>-<id>.mp4` when the sheet names the row; `<row>-<task id>.mp4` when it does not."""
    from batchwan.pool.runner import video_name

    sheet = tmp_path / "s.csv"
    sheet.write_text(
        "id,prompt,image\nhero/1,a cat,https://x.example.com/a.jpg\n,a dog,https://x.example.com/b.jpg\n",
        encoding="utf-8",
    )
    spec = load_source(sheet)
    named, unnamed = check_rows(read_sheet(spec.sheet), spec)
    assert (named.own_id, unnamed.own_id) == (True, False)
    assert video_name(named, "t-1") == "1-hero_1.mp4"
    assert video_name(unnamed, "t-2") == "2-t-2.mp4"


async def test_tasks_past_their_deadline_keep_their_places(tmp_path: Path) -> None:
    """A task past its deadline may still run at the provider: its place in --concurrency
    stays taken, so the provider never holds more tasks than that; rows left over stay
    pending, saying why."""
    config = SimConfig(hold=True)
    options = RunOptions(concurrency=2, rate=1000, poll_interval=0.02, task_deadline=0.3)
    outcome, _, records, stats = await asyncio.wait_for(
        _run(tmp_path, config, options, 5), timeout=30
    )
    assert outcome.stop is None
    assert stats["max_in_flight_seen"] <= 2
    assert stats["tasks_created"] == 2
    assert [r.status for r in records] == [Status.RUNNING] * 2 + [Status.PENDING] * 3
    assert all("run again to collect it" in (r.error or "") for r in records[:2])
    assert all("held by tasks still running" in (r.error or "") for r in records[2:])


async def test_one_overdue_task_leaves_the_other_places_working(tmp_path: Path) -> None:
    """One task that never ends holds one place past its deadline; the rest of the sheet
    goes through the other place, and the provider never holds more than --concurrency."""
    rows = _rows(tmp_path, 6)
    ledger = _open(tmp_path, rows)
    options = RunOptions(concurrency=2, rate=1000, poll_interval=0.02, task_deadline=1.0,
                         download=False)  # fmt: skip
    try:
        async with serve(SimConfig(hold=True)) as sim, open_session() as session:
            client = Client(session, base_url=sim.base_url, api_key=None)
            releaser = asyncio.create_task(_release_all_but_the_first(sim.sim))
            try:
                runner = Runner(ledger, client, options, body_for=build_body)
                outcome = await asyncio.wait_for(runner.run(rows), timeout=30)
            finally:
                releaser.cancel()
            stats = sim.sim.stats()
        records = ledger.records()
    finally:
        ledger.close()
    assert outcome.stop is None
    assert stats["max_in_flight_seen"] <= 2
    assert stats["tasks_created"] == 6
    statuses = sorted(r.status.value for r in records)
    assert statuses == ["running"] + ["succeeded"] * 5


async def _release_all_but_the_first(sim: Any) -> None:
    """Release every held task except the first one created, again and again."""
    while True:
        for task in sim.tasks()[1:]:
            if task["held"]:
                sim.release(task["id"])
        await asyncio.sleep(0.02)


class DownloadSpy(CreateSpy):
    """Counts the downloads open at once (each held a moment, so they can overlap)."""

    def __init__(self, client: Client) -> None:
        super().__init__(client)
        self.open = self.most_open = self.downloads = 0
        self.sync_folder: set[bool] = set()

    async def download(self, url: str, dest: Path, *, sync_folder: bool = True) -> int:
        """Hold the download a moment, noting how many are open, then pass it through."""
        self.open += 1
        self.downloads += 1
        self.most_open = max(self.most_open, self.open)
        self.sync_folder.add(sync_folder)
        try:
            await asyncio.sleep(0.2)
            return await self.client.download(url, dest, sync_folder=sync_folder)
        finally:
            self.open -= 1


async def test_downloads_at_once_follow_concurrency(tmp_path: Path) -> None:
    """With --concurrency 16, up to 16 downloads run at once (no longer 4), never more; every
    video lands and is recorded, and the folder fsync is the runner's (shared), not each file's."""
    rows = _rows(tmp_path, 40)
    ledger = _open(tmp_path, rows)
    options = RunOptions(concurrency=16, rate=1000, poll_interval=0.02)
    try:
        async with serve(SimConfig()) as sim, open_session() as session:
            spy = DownloadSpy(Client(session, base_url=sim.base_url, api_key=None))
            runner = Runner(ledger, spy, options, body_for=build_body)
            await asyncio.wait_for(runner.run(rows), timeout=60)
        records = ledger.records()
    finally:
        ledger.close()
    assert 4 < spy.most_open <= 16
    assert spy.sync_folder == {False}
    assert all(r.status is Status.SUCCEEDED and r.video_file for r in records)
    assert all((tmp_path / "run" / (r.video_file or "")).is_file() for r in records)
    assert not list((tmp_path / "run" / "videos").glob("*.part"))


async def test_polls_keep_to_the_poll_rate(tmp_path: Path) -> None:
    """Eight tasks polled every 10 ms with --poll-rate 10: never more than 10 lookups in any
    one-second window."""
    seen: list[float] = []

    class PollSpy(CreateSpy):
        async def get(self, task_id: str, *, model: str | None = None) -> TaskInfo:
            seen.append(asyncio.get_running_loop().time())
            return await self.client.get(task_id, model=model)

    rows = _rows(tmp_path, 8)
    ledger = _open(tmp_path, rows)
    options = RunOptions(concurrency=8, rate=1000, poll_interval=0.01, poll_rate=10,
                         download=False)  # fmt: skip
    try:
        async with serve(SimConfig(processing_seconds=2.5)) as sim, open_session() as session:
            spy = PollSpy(Client(session, base_url=sim.base_url, api_key=None))
            runner = Runner(ledger, spy, options, body_for=build_body)
            await asyncio.wait_for(runner.run(rows), timeout=60)
        records = ledger.records()
    finally:
        ledger.close()
    assert {r.status for r in records} == {Status.SUCCEEDED}
    assert len(seen) > 20  # the limit was what held them back
    seen.sort()
    for i in range(len(seen) - 10):
        assert seen[i + 10] - seen[i] >= 1.0 - 0.01


async def test_a_rerun_downloads_only_the_videos_missing_from_the_folder(tmp_path: Path) -> None:
    """The next runner over the record fetches again only the deleted video (and one named in
    the record outside videos/), listing videos/ once rather than looking up each file."""
    rows = _rows(tmp_path, 30)
    ledger = _open(tmp_path, rows)
    options = RunOptions(concurrency=8, rate=1000, poll_interval=0.02)
    run_dir = tmp_path / "run"
    try:
        async with serve(SimConfig()) as sim, open_session() as session:
            client = Client(session, base_url=sim.base_url, api_key=None)
            await asyncio.wait_for(
                Runner(ledger, client, options, body_for=build_body).run(rows), 60
            )
            first = {r.key: r.video_file or "" for r in ledger.records()}
            gone, moved = rows[3].key, rows[7].key
            (run_dir / first[gone]).unlink()
            (run_dir / "elsewhere").mkdir()
            (run_dir / first[moved]).rename(run_dir / "elsewhere" / "moved.mp4")
            await ledger.note(moved, None, video_file="elsewhere/moved.mp4")
            (run_dir / "elsewhere" / "moved.mp4").unlink()
            spy = DownloadSpy(client)
            checked: list[Path] = []
            is_file = Path.is_file

            def noting(path: Path) -> bool:
                checked.append(path)
                return is_file(path)

            with mock.patch.object(Path, "is_file", noting):
                await asyncio.wait_for(
                    Runner(ledger, spy, options, body_for=build_body).run(rows), 60
                )
        records = {r.key: r for r in ledger.records()}
    finally:
        ledger.close()
    assert spy.downloads == 2
    assert all(r.status is Status.SUCCEEDED for r in records.values())
    assert all((run_dir / (r.video_file or "")).is_file() for r in records.values())
    assert records[gone].video_file == first[gone]  # fetched again under its own name
    assert [p.name for p in checked if p.suffix == ".mp4"] == ["moved.mp4"]
