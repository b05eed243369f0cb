"""The Python API: run and arun from a DataFrame or rows, validate, results of a run folder."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import batchwan
from batchwan import events
from batchwan.outputs.frame import STATUS_DTYPE
from batchwan.sim.simulator import RunningSimulator, SimConfig, serve_in_thread
from batchwan.store.runlock import RunLock
from batchwan.values import Status
from tests.runhelpers import KEY, fast_options, invoke, read_results, write_sheet

#: The frame's types, pinned: analysts' code relies on them.
DTYPES = {
    "row": "Int64",
    "id": "string",
    "status": "category",
    "task_id": "string",
    "video_url": "string",
    "video_file": "string",
    "error": "string",
    "attempts": "Int64",
    "submitted_at": "datetime64[ns, UTC]",
    "finished_at": "datetime64[ns, UTC]",
    "model": "string",
    "prompt": "string",
    "image": "string",
    "resolution": "string",
    "duration": "Int64",
    "seed": "Int64",
    "cost": "float64",
    "line": "Int64",
}


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    """One instant simulator, on its own thread, for every test here."""
    config = SimConfig(api_key=KEY, pending_seconds=0, processing_seconds=0)
    with serve_in_thread(config) as running:
        yield running


def _frame(count: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "prompt": [f"prompt number {i}: a heron lifts off a lake" for i in range(1, count + 1)],
            "image": [f"https://images.example.com/{i}.jpg" for i in range(1, count + 1)],
            "duration": [5] * count,
            "resolution": ["480P"] * count,
            "campaign": [f"=c{i % 3}" for i in range(1, count + 1)],  # a formula-like cell
        }
    )


def _fast(sim: RunningSimulator, out: Path, **more: Any) -> dict[str, Any]:
    return {
        "out": out, "base_url": sim.base_url, "api_key": KEY, "poll_interval": 0.05,
        "concurrency": 16, "rate": 200, **more,
    }  # fmt: skip


def _assert_all_succeeded(frame: pd.DataFrame, count: int) -> None:
    assert {name: str(dtype) for name, dtype in frame.dtypes.items()} == {
        **DTYPES,
        "campaign": "string",
    }
    assert list(frame.columns) == [*DTYPES, "campaign"]
    assert frame["status"].dtype == STATUS_DTYPE
    assert list(frame["status"].cat.categories) == [s.value for s in Status]
    assert frame["row"].tolist() == list(range(1, count + 1))
    assert (frame["status"] == "succeeded").all()
    assert frame["video_file"].notna().all()
    assert (frame["attempts"] == 1).all()
    assert (frame["submitted_at"] <= frame["finished_at"]).all()
    assert frame["cost"].sum() == pytest.approx(count * 0.25)
    assert frame["campaign"].tolist()[:3] == ["=c1", "=c2", "=c0"]  # not formula-escaped


def test_a_dataframe_of_50_rows_gives_a_typed_frame_all_succeeded(
    tmp_path: Path, sim: RunningSimulator
) -> None:
    """50 URL-image rows in, a DataFrame out: pinned dtypes, every row succeeded, videos saved."""
    seen: list[events.Event] = []
    frame = batchwan.run(_frame(50), **_fast(sim, tmp_path / "run"), on_event=seen.append)
    _assert_all_succeeded(frame, 50)
    assert all((tmp_path / "run" / name).is_file() for name in frame["video_file"])
    kinds = [type(event).__name__ for event in seen]
    assert kinds[:2] == ["RowsChecked", "RunStarted"]
    assert seen[-1] == events.RunEnded(tmp_path / "run", {"succeeded": 50}, None, ())
    assert seen[0] == events.RowsChecked(rows=50, valid=50, invalid=0, duplicate=0)
    accepted = sorted(e.row for e in seen if isinstance(e, events.RowAccepted) and e.row)
    assert accepted == list(range(1, 51))
    assert sum(isinstance(e, events.RowFinished) for e in seen) == 50
    assert sum(isinstance(e, events.RowDownloaded) for e in seen) == 50


def test_a_list_of_mappings_runs_on_the_built_in_simulator(tmp_path: Path) -> None:
    """simulate=True needs no key; a list of dicts is a source like any sheet."""
    rows = _frame(3).to_dict(orient="records")
    frame = batchwan.run(rows, out=tmp_path / "run", simulate=True, api_key=None)
    _assert_all_succeeded(frame, 3)


async def test_run_and_arun_from_inside_a_running_event_loop(
    tmp_path: Path, sim: RunningSimulator
) -> None:
    """In a loop (a notebook's), run goes on a worker thread and arun on the caller's loop."""
    asyncio.get_running_loop()  # this test body runs inside a loop
    frame = batchwan.run(_frame(50), **_fast(sim, tmp_path / "sync"))
    _assert_all_succeeded(frame, 50)
    # The same 50 requests again from another folder: held back, unless a repeat is asked for.
    again = batchwan.run(_frame(50), **_fast(sim, tmp_path / "again"))
    assert (again["status"] == "duplicate").all()
    frame = await batchwan.arun(_frame(50), **_fast(sim, tmp_path / "async"), allow_repeat=True)
    _assert_all_succeeded(frame, 50)


def test_a_bad_row_is_a_row_of_the_frame_with_its_problem(
    tmp_path: Path, sim: RunningSimulator
) -> None:
    """A row with duration 7 comes back invalid with its problem in `error`; the rest succeed."""
    source = _frame(3)
    source.loc[1, "duration"] = 7
    frame = batchwan.run(source, **_fast(sim, tmp_path / "run"))
    assert frame["status"].tolist() == ["succeeded", "invalid", "succeeded"]
    assert "wan2.5-i2v-preview takes 5 or 10, got 7" in frame.loc[1, "error"]
    assert pd.isna(frame.loc[1, "task_id"])


def test_a_rerun_continues_the_run_folder(tmp_path: Path, sim: RunningSimulator) -> None:
    """The same rows and out again: nothing is sent twice, the frame is the same."""
    first = batchwan.run(_frame(4), **_fast(sim, tmp_path / "run"))
    creates = sim.sim.stats()["creates_received"]
    again = batchwan.run(_frame(4), **_fast(sim, tmp_path / "run"))
    assert sim.sim.stats()["creates_received"] == creates
    pd.testing.assert_frame_equal(first, again)


def test_results_reads_a_run_folder_written_by_the_command(
    tmp_path: Path, sim: RunningSimulator
) -> None:
    """results(run_dir) on a folder the CLI wrote: the rows of results.csv, typed, unescaped."""
    sheet = write_sheet(tmp_path, 5)
    with sheet.open("a", encoding="utf-8") as handle:
        handle.write("=1+1,https://images.example.com/x.jpg,5,480P,@sum\n")
    out = tmp_path / "run"
    assert invoke(["run", str(sheet), *fast_options(sim.base_url, out)]).exit_code == 0
    frame = batchwan.results(out)
    written = read_results(out)
    assert {name: str(dtype) for name, dtype in frame.dtypes.items()} == {
        **DTYPES,
        "campaign": "string",
    }
    assert frame["id"].tolist() == [r["id"] for r in written]
    assert frame["status"].tolist() == [r["status"] for r in written]
    assert frame["task_id"].fillna("").tolist() == [r["task_id"] for r in written]
    assert written[-1]["campaign"] == "'@sum"  # escaped in the file, not in the frame
    assert frame["campaign"].tolist()[-1] == "@sum"
    assert frame["status"].tolist() == ["succeeded"] * 6
    assert frame["row"].tolist() == [int(r["row"]) for r in written]
    assert frame["cost"].tolist() == [float(r["cost"]) for r in written]


def test_validate_gives_every_problem_as_a_frame(tmp_path: Path) -> None:
    """validate(rows): row, id, column, message; nothing sent, nothing written."""
    source = _frame(3)
    source.loc[0, "prompt"] = ""
    source.loc[2, "duration"] = 7
    before = sorted(tmp_path.iterdir())
    problems = batchwan.validate(source, image_root=tmp_path)
    assert list(problems.columns) == ["row", "id", "column", "message"]
    assert {name: str(d) for name, d in problems.dtypes.items()} == {
        "row": "Int64",
        "id": "string",
        "column": "string",
        "message": "string",
    }
    assert problems["row"].tolist() == [1, 3]
    assert problems["column"].tolist() == ["prompt", "duration"]
    assert problems["message"].tolist()[1] == "wan2.5-i2v-preview takes 5 or 10, got 7"
    assert sorted(tmp_path.iterdir()) == before
    assert batchwan.validate(_frame(2)).empty


def test_validate_reads_a_sheet_path(tmp_path: Path) -> None:
    """validate(path) reads the sheet (or job file) as the command does."""
    sheet = write_sheet(tmp_path, 2)
    assert batchwan.validate(sheet).empty
    assert batchwan.validate(str(sheet)).empty


def test_local_images_of_a_frame_are_relative_to_image_root(
    tmp_path: Path, sim: RunningSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A frame's local image paths start at image_root (default: the current directory)."""
    from PIL import Image

    (tmp_path / "frames").mkdir()
    Image.new("RGB", (640, 480), (200, 120, 40)).save(tmp_path / "frames" / "first.png")
    source = pd.DataFrame({"prompt": ["a kettle boils"], "image": ["first.png"]})
    frame = batchwan.run(source, **_fast(sim, tmp_path / "a", image_root=tmp_path / "frames"))
    assert frame["status"].tolist() == ["succeeded"]
    monkeypatch.chdir(tmp_path / "frames")
    assert batchwan.validate(source).empty
    outside = pd.DataFrame({"prompt": ["a kettle boils"], "image": ["../frames/first.png"]})
    problems = batchwan.validate(outside, image_root=tmp_path / "frames" / ".")
    assert problems.empty  # ../frames/first.png resolves inside the root
    escape = pd.DataFrame({"prompt": ["p"], "image": ["../../etc/passwd"]})
    assert "leads outside" in batchwan.validate(escape)["message"].iloc[0]


@pytest.mark.parametrize(
    ("source", "options", "message"),
    [
        ("missing.csv", {"simulate": True}, "missing.csv: no such file"),
        (pd.DataFrame({"prompt": ["p"]}), {"simulate": True}, "needs out="),
        ([{"prompt": "p"}, "not a row"], {"simulate": True, "out": "x"}, "row 2: is a str"),
        (42, {"simulate": True, "out": "x"}, "cannot read a int as a sheet"),
        ([{"prompt": "p"}], {"out": "x", "api_key": None}, "no API key"),
    ],
    ids=["missing-file", "no-out", "not-a-mapping", "not-a-source", "no-key"],
)
def test_a_source_that_cannot_be_used_raises_input_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    source: Any,
    options: dict[str, Any],
    message: str,
) -> None:
    """InputError from the error tree (never SystemExit), saying what is wrong."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MULEROUTER_API_KEY", raising=False)
    with pytest.raises(batchwan.InputError, match=message.replace("(", r"\(")):
        batchwan.run(source, **options)


def test_a_locked_run_folder_raises_run_locked(tmp_path: Path) -> None:
    """Another run holding the folder: RunLocked, and nothing sent."""
    out = tmp_path / "run"
    with RunLock(out), pytest.raises(batchwan.RunLocked, match="another batchwan run"):
        batchwan.run(_frame(1), out=out, simulate=True)


def test_a_refused_key_raises_account_error(tmp_path: Path, sim: RunningSimulator) -> None:
    """401 from the provider: AccountError naming where the rows so far are."""
    with pytest.raises(batchwan.AccountError, match=r"batchwan\.results\("):
        batchwan.run(_frame(2), **_fast(sim, tmp_path / "run", api_key="sk-wrong-0123456789"))
    assert batchwan.results(tmp_path / "run")["status"].tolist() == ["pending", "pending"]


def test_the_budget_raises_budget_exceeded(tmp_path: Path, sim: RunningSimulator) -> None:
    """max_cost reached: BudgetExceeded; the rows that fit were sent and are in the folder."""
    with pytest.raises(batchwan.BudgetExceeded, match="max-cost"):
        batchwan.run(_frame(4), **_fast(sim, tmp_path / "run", max_cost=0.5))
    statuses = batchwan.results(tmp_path / "run")["status"].tolist()
    assert statuses.count("succeeded") == 2
    assert statuses.count("pending") == 2


def test_a_failing_event_callback_does_not_lose_the_run(
    tmp_path: Path, sim: RunningSimulator
) -> None:
    """An on_event that raises is logged and ignored: the run still ends with every row done."""

    def broken(event: events.Event) -> None:
        raise ValueError("a display bug")

    frame = batchwan.run(_frame(2), **_fast(sim, tmp_path / "run"), on_event=broken)
    assert frame["status"].tolist() == ["succeeded", "succeeded"]


def test_options_owned_by_later_stages_reach_the_job_spec(tmp_path: Path) -> None:
    """limit, store and group_by are handed to the job spec under the same names."""
    from batchwan.api import _prepare

    options: dict[str, Any] = {
        "source": _frame(2), "out": tmp_path / "run", "simulate": True, "api_key": None,
        "base_url": None, "wait": True, "download": True, "resubmit_unknown": False,
        "retry_failed": False, "fix_images": False, "limit": 1, "store": "postgresql://runner@127.0.0.1/batchwan",
        "group_by": "campaign", "concurrency": 3, "rate": 1.5, "poll_interval": 0.5,
        "max_cost": 9.0, "model": None, "image_root": None,
    }  # fmt: skip
    prepared, settings = _prepare(options)
    spec = prepared.spec
    assert (spec.limit, spec.store, spec.group_by) == (
        1,
        "postgresql://runner@127.0.0.1/batchwan",
        ("campaign",),
    )
    assert (spec.concurrency, spec.rate, spec.poll_interval, spec.max_cost) == (3, 1.5, 0.5, 9.0)
    assert prepared.run_dir == tmp_path / "run"
    assert settings.simulate
    assert not (tmp_path / "run").exists()  # preparing writes nothing


_INTERRUPTED_SCRIPT = """
import sys, pandas as pd, batchwan
rows = [{"prompt": f"prompt {i}", "image": f"https://images.example.com/{i}.jpg"} for i in range(4)]
try:
    batchwan.run(rows, out=sys.argv[1], base_url=sys.argv[2], api_key=sys.argv[3],
                 poll_interval=0.05, concurrency=4, rate=100)
except KeyboardInterrupt:
    print("KeyboardInterrupt")
    sys.exit(7)
"""


def _recorded_ids(out: Path) -> int:
    """Task ids committed in the run folder's record so far (0 before it exists)."""
    if not (out / "state.db").exists():
        return 0
    try:
        return int(batchwan.results(out)["task_id"].notna().sum())
    except Exception:  # the record is being created: ask again
        return 0


def test_ctrl_c_during_run_saves_state_and_raises_keyboard_interrupt(tmp_path: Path) -> None:
    """Ctrl-C in a script calling batchwan.run: KeyboardInterrupt, and every task id kept."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    with serve_in_thread(SimConfig(hold=True, api_key=KEY)) as held:
        proc = subprocess.Popen(
            [sys.executable, "-c", _INTERRUPTED_SCRIPT, str(out), held.base_url, KEY],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            # Ctrl-C once the four task ids are in the record: the simulator counts a task
            # before its answer reaches the client, and a create cut off on the wire is
            # `unknown` by design, not what this test is about.
            deadline = time.monotonic() + 30
            while _recorded_ids(out) < 4 and time.monotonic() < deadline:
                time.sleep(0.05)
            proc.send_signal(signal.SIGINT)
            stdout, stderr = proc.communicate(timeout=30)
        finally:
            proc.kill()
    assert proc.returncode == 7, stderr.decode()
    assert stdout.decode().strip() == "KeyboardInterrupt"
    frame = batchwan.results(out)
    assert frame["status"].tolist() == ["running"] * 4
    assert frame["task_id"].notna().all()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"concurrency": 0}, "concurrency=0: must be 1 to 512"),
        ({"concurrency": 2.5}, "concurrency=2.5: must be a whole number"),
        ({"concurrency": True}, "concurrency=True: must be a whole number"),
        ({"rate": 0}, "rate=0: must be at least 0.01"),
        ({"poll_interval": float("nan")}, "poll_interval=nan: must be a number"),
        ({"max_cost": -1}, "max_cost=-1: must be at least 0"),
        ({"limit": 0}, "limit=0: must be at least 1"),
        ({"image_root": "no/such/folder"}, "image_root='no/such/folder': no such folder"),
    ],
    ids=lambda value: str(value),
)
def test_a_keyword_out_of_range_is_refused(
    tmp_path: Path, options: dict[str, Any], message: str
) -> None:
    """A keyword the command's option would refuse raises InputError, before anything runs."""
    with pytest.raises(batchwan.InputError, match=message.replace("(", r"\(")):
        batchwan.run(_frame(1), out=tmp_path / "run", simulate=True, **options)
    assert not (tmp_path / "run").exists()


def _statuses(out: Path) -> list[str]:
    """Each row's status; "no task id yet" for a row without one (a live run shows a row whose
    create is still unanswered as running)."""
    try:
        frame = batchwan.results(out)
    except batchwan.StateError:  # the record is still being created
        return []
    return [
        str(status) if pd.notna(task) else "no task id yet"
        for status, task in zip(frame["status"], frame["task_id"], strict=True)
    ]


async def test_cancelling_arun_propagates_and_keeps_every_task_id(tmp_path: Path) -> None:
    """A cancelled arun raises CancelledError; the record keeps the accepted tasks, unlocked."""
    out = tmp_path / "run"
    with serve_in_thread(SimConfig(hold=True, api_key=KEY)) as held:
        task = asyncio.create_task(
            batchwan.arun(_frame(3), out=out, base_url=held.base_url, api_key=KEY,
                          poll_interval=0.05, concurrency=3, rate=100)
        )  # fmt: skip
        for _ in range(600):  # bounded: at most 30 s; every answer recorded, none on the wire
            if (out / "state.db").is_file() and _statuses(out) == ["running"] * 3:
                break
            await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    frame = batchwan.results(out)
    assert frame["status"].tolist() == ["running"] * 3
    assert frame["task_id"].notna().all()
    assert (out / "results.csv").is_file()
    with RunLock(out):  # the folder was released
        pass
