"""Sheets that mix models, run end to end against the simulator; the simulator's model paths."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from mutagen.mp4 import MP4
from PIL import Image

from batchwan.catalog.registry import find_model, get_model
from batchwan.checks import validation
from batchwan.checks.validation import build_body, check_rows
from batchwan.sheet.loader import read_sheet
from batchwan.sim.mp4 import tiny_mp4
from batchwan.sim.simulator import SimConfig, serve, serve_in_thread
from batchwan.store.records import read_records, request_as_sent
from batchwan.values import JobSpec, Status
from tests.runhelpers import KEY, fast_options, invoke, read_results

URL = "https://images.example.com/{}.jpg"
INSTANT = {"pending_seconds": 0.0, "processing_seconds": 0.0}

# (model cell, cells, rows, USD per row by hand): 40 rows over six models. The job's model is
# wan2.5-i2v-preview (rows with an empty cell); wan2.2-i2v-flash is priced by the job file.
GROUPS: list[tuple[str, dict[str, str], int, float]] = [
    ("wan2.6-i2v", {"resolution": "720P", "duration": "5"}, 4, 0.50),
    ("wan2.6-i2v", {"resolution": "1080P", "duration": "10"}, 2, 1.50),
    ("wan2.6-i2v", {"resolution": "720P", "duration": "15", "shot_type": "multi"}, 2, 1.50),
    ("", {"resolution": "480P", "duration": "5"}, 4, 0.25),
    ("", {"duration": "10"}, 4, 1.00),
    ("wan2.2-i2v-flash", {"resolution": "480P"}, 2, 0.075),
    ("wan2.2-i2v-flash", {"template": "solaron"}, 4, 0.18),
    ("wan2.1-kf2v-plus", {"image": "frames/first.png", "last_frame": "frames/last.png"}, 4, 0.50),
    ("wan2.6-t2v", {"image": "", "size": "1280*720"}, 3, 0.50),
    ("wan2.6-t2v", {"image": "", "resolution": "720P", "duration": "15"}, 3, 1.50),
    ("wan2.6-t2v", {"image": "", "size": "1080x1920", "duration": "10"}, 2, 1.50),
    ("wan2.2-t2v-plus", {"image": "", "size": "832*480"}, 3, 0.10),
    ("wan2.2-t2v-plus", {"image": ""}, 3, 0.50),
]
HAND_COUNT = 26.67  # 8.00 + 5.00 + 0.87 + 2.00 + 9.00 + 1.80, worked out from GROUPS by hand
CREATES_BY_PATH = {
    "/vendors/alibaba/v1/wan2.6-i2v/generation": 8,
    "/vendors/alibaba/v1/wan2.5-i2v-preview/generation": 8,
    "/vendors/alibaba/v1/wan2.2-i2v-flash/generation": 6,
    "/vendors/alibaba/v1/wan2.1-kf2v-plus/generation": 4,
    "/vendors/alibaba/v1/wan2.6-t2v/generation": 8,
    "/vendors/alibaba/v1/wan2.2-t2v-plus/generation": 6,
}
HEADER = [
    "model", "prompt", "image", "last_frame", "resolution", "size", "duration", "shot_type",
    "template", "clip_seconds",
]  # fmt: skip


def frame(path: Path, colour: tuple[int, int, int]) -> None:
    """A plain PNG frame the API takes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (640, 400), colour).save(path)


def mixed_sheet(folder: Path, groups: list[tuple[str, dict[str, str], int, float]]) -> Path:
    """The sheet of GROUPS, with the seconds each row should last as a column of the user's."""
    frame(folder / "frames" / "first.png", (200, 30, 30))
    frame(folder / "frames" / "last.png", (30, 30, 200))
    path = folder / "mixed.csv"
    number = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, HEADER)
        writer.writeheader()
        for model, cells, count, _ in groups:
            spec = find_model(model or "wan2.5-i2v-preview") or get_model("wan2.5-i2v-preview")
            for _ in range(count):
                number += 1
                row = {
                    "model": model,
                    "prompt": f"shot {number}: a kite",
                    "image": URL.format(number),
                }
                row.update(cells)
                row["clip_seconds"] = row.get("duration") or str(spec.default_duration)
                writer.writerow(row)
    return path


def job(folder: Path, sheet: str, extra: str = "") -> Path:
    """A job file over the sheet: the default model, and flash priced per model."""
    path = folder / "job.yaml"
    path.write_text(
        f"sheet: {sheet}\nmodel: wan2.5-i2v-preview\n"
        f"prices:\n  wan2.2-i2v-flash: {{480P: 0.015, 720P: 0.036}}\n{extra}",
        encoding="utf-8",
    )
    return path


def test_hand_count_matches_the_groups() -> None:
    """The hand count above is the sum of the groups' rows times their prices."""
    assert sum(count for *_, count, _ in GROUPS) == 40
    assert sum(count * price for *_, count, price in GROUPS) == pytest.approx(HAND_COUNT)


def test_a_mixed_sheet_of_six_models_runs_each_row_at_its_model(tmp_path: Path) -> None:
    """40 rows over six models: each reaches its model's path, none is refused, each video lasts
    the row's seconds, and the dry run's cost is the hand count."""
    source = job(tmp_path, mixed_sheet(tmp_path, GROUPS).name)
    out = tmp_path / "run"
    dry = invoke(["run", str(source), "--dry-run", "--out", str(out)])
    assert dry.exit_code == 0, dry.output
    assert re.search(rf"^  new\s+\${HAND_COUNT:.2f}$", dry.output, re.MULTILINE), dry.output
    assert re.search(r"^  wan2.6-t2v 720P \(size 1280\*720\)\s+60 s  \(\$6.00\)$", dry.output, re.M)
    with serve_in_thread(SimConfig(seed=5, api_key=KEY, **INSTANT)) as sim:
        result = invoke(["run", str(source), *fast_options(sim.base_url, out)])
        stats = sim.sim.stats()
        tasks = sim.sim.tasks()
    assert result.exit_code == 0, result.output
    assert stats["rejected_400"] == 0
    assert stats["creates_by_path"] == CREATES_BY_PATH
    assert Counter(t["model"] for t in tasks) == Counter(
        {path.split("/")[4]: n for path, n in CREATES_BY_PATH.items()}
    )
    records = read_records(out)
    assert Counter(r.model for r in records) == Counter(
        {path.split("/")[4]: n for path, n in CREATES_BY_PATH.items()}
    )
    rows = read_results(out)
    assert {r["status"] for r in rows} == {"succeeded"}
    for row in rows:
        assert MP4(out / row["video_file"]).info.length == float(row["clip_seconds"]), row
    # results.csv keeps each row's cost to a hundredth of a cent: the $0.075 rows add up exactly.
    assert sum(float(r["cost"]) for r in rows) == pytest.approx(HAND_COUNT)


def test_an_unregistered_model_in_a_row_fails_that_row_only(tmp_path: Path) -> None:
    """A row naming no known model is invalid with the list of models; the others are sent."""
    groups = [("wan2.6-i2v", {}, 2, 0.5), ("wan9-i2v", {}, 1, 0.0)]
    sheet = mixed_sheet(tmp_path, groups)
    out = tmp_path / "run"
    with serve_in_thread(SimConfig(seed=6, **INSTANT)) as sim:
        result = invoke(["run", str(sheet), *fast_options(sim.base_url, out)])
        assert sim.sim.stats()["creates_by_path"] == {
            "/vendors/alibaba/v1/wan2.6-i2v/generation": 2
        }
    assert result.exit_code == 1
    assert (
        "row 3: model: unknown model 'wan9-i2v'; the models are: wan2.6-i2v, wan2.5-i2v-preview,"
        in result.output
    )
    assert [r["status"] for r in read_results(out)] == ["succeeded", "succeeded", "invalid"]


@pytest.mark.parametrize("where", ["option", "job file"])
def test_an_unregistered_job_model_stops_before_anything(tmp_path: Path, where: str) -> None:
    """A typo in --model or `model:` is a bad option: exit 2 with the list, nothing read on."""
    sheet = mixed_sheet(tmp_path, [("wan2.6-i2v", {}, 1, 0.5), ("", {}, 1, 0.5)])
    if where == "option":
        args = ["run", str(sheet), "--model", "wan2.6-i2vv", "--dry-run"]
    else:
        source = tmp_path / "j.yaml"
        source.write_text(f"sheet: {sheet.name}\nmodel: wan2.6-i2vv\n", encoding="utf-8")
        args = ["run", str(source), "--dry-run"]
    result = invoke(args)
    assert result.exit_code == 2
    assert "--model / model: unknown model 'wan2.6-i2vv'; the models are: wan2.6-i2v," in (
        result.output
    )
    if where == "job file":  # validate has no --model; it reads the job file's
        checked = invoke(["validate", str(source)])
        assert checked.exit_code == 2
        assert "--model / model: unknown model 'wan2.6-i2vv'" in checked.output


def test_unknown_prices_are_said_and_held_under_a_ceiling(tmp_path: Path) -> None:
    """Without a price for flash, the plan says so; under --max-cost its rows stay pending with
    the reason and the priced rows are sent."""
    groups = [("wan2.2-i2v-flash", {}, 2, 0.0), ("wan2.6-i2v", {}, 2, 0.5)]
    sheet = mixed_sheet(tmp_path, groups)
    out = tmp_path / "run"
    dry = invoke(["run", str(sheet), "--dry-run", "--max-cost", "10", "--out", str(out)])
    assert re.search(
        r"^  wan2.2-i2v-flash 720P\s+10 s  \(price unknown: set it under `prices:` in the job "
        r"file\)$",
        dry.output,
        re.MULTILINE,
    ), dry.output
    assert re.search(
        r"^  price unknown\s+2 rows  \(not counted above; --max-cost keeps them ", dry.output, re.M
    )
    assert re.search(r"^  new\s+\$1.00$", dry.output, re.MULTILINE)
    with serve_in_thread(SimConfig(seed=8, **INSTANT)) as sim:
        result = invoke(["run", str(sheet), *fast_options(sim.base_url, out, "--max-cost", "10")])
        assert sim.sim.stats()["creates_by_path"] == {
            "/vendors/alibaba/v1/wan2.6-i2v/generation": 2
        }
    assert result.exit_code == 1
    rows = read_results(out)
    assert [r["status"] for r in rows] == ["pending", "pending", "succeeded", "succeeded"]
    assert rows[0]["error"].startswith(
        "not sent: no known price for wan2.2-i2v-flash at 720P and --max-cost is set; give one "
        "under `prices:` in the job file"
    )


def test_unknown_prices_without_a_ceiling_are_sent_with_a_warning(tmp_path: Path) -> None:
    """Without --max-cost, rows of unknown price are sent, and the run says their cost is not
    known rather than keeping quiet about a $0.00."""
    sheet = mixed_sheet(tmp_path, [("wan2.2-i2v-flash", {"resolution": "480P"}, 1, 0.0)])
    with serve_in_thread(SimConfig(seed=4, **INSTANT)) as sim:
        result = invoke(["run", str(sheet), *fast_options(sim.base_url, tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert (
        "warning: no known price for wan2.2-i2v-flash at 480P; those rows are sent and their "
        "cost shows as $0.00 (give it under `prices:` in the job file)" in result.output
    )


def test_local_frames_are_encoded_once_each_and_confined(tmp_path: Path) -> None:
    """Four kf2v rows on one pair of local frames: each file is read and encoded once; a last
    frame outside the sheet's folder is refused like a first frame."""
    groups = [("wan2.1-kf2v-plus", {"image": "frames/first.png", "last_frame": "frames/last.png"},
               4, 0.5),
              ("wan2.1-kf2v-plus", {"last_frame": "../outside.png"}, 1, 0.5)]  # fmt: skip
    frame(tmp_path / "outside.png", (0, 0, 0))
    folder = tmp_path / "sheet"
    sheet = mixed_sheet(folder, groups)
    rows = check_rows(read_sheet(sheet), JobSpec(sheet=sheet))
    assert [r.status for r in rows] == [Status.PENDING] * 4 + [Status.INVALID]
    assert str(rows[4].issues[0]).startswith("row 5: last_frame: ../outside.png leads outside")
    validation._data_uri.cache_clear()
    bodies = [build_body(row) for row in rows[:4]]
    info = validation._data_uri.cache_info()
    assert (info.misses, info.hits) == (2, 6)
    assert bodies[0]["image"].startswith("data:image/png;base64,")
    assert bodies[0]["last_frame"] != bodies[0]["image"]
    assert all(b["image"] is bodies[0]["image"] for b in bodies)
    labelled = request_as_sent(rows[0])  # what the record keeps: paths, never base64
    assert labelled["last_frame"] == str((folder / "frames" / "last.png").resolve())


def test_fix_images_mends_a_last_frame(tmp_path: Path) -> None:
    """--fix-images fixes an oversized last frame too, and the row says what was done."""
    Image.new("RGB", (4000, 2500), (9, 9, 9)).save(tmp_path / "big.png")
    frame(tmp_path / "first.png", (1, 2, 3))
    sheet = tmp_path / "s.csv"
    sheet.write_text(
        "model,prompt,image,last_frame\nwan2.1-kf2v-plus,a,first.png,big.png\n", encoding="utf-8"
    )
    plain = check_rows(read_sheet(sheet), JobSpec(sheet=sheet))[0]
    assert plain.issues[0].column == "last_frame"
    assert plain.issues[0].fixable
    fixed = check_rows(read_sheet(sheet), JobSpec(sheet=sheet), fix_dir=tmp_path / "fixed")[0]
    assert fixed.status is Status.PENDING
    assert fixed.last_frame_path is not None
    assert fixed.last_frame_path.parent == tmp_path / "fixed"
    assert fixed.notes[0].startswith("last_frame: resized 4000x2500 -> 2000x1250")


# -- the simulator, model by model --------------------------------------------------------------


async def _post(base: str, path: str, body: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.post(base + path, json=body) as r:
        return r.status, await r.json()


async def _get(base: str, path: str) -> int:
    async with aiohttp.ClientSession() as http, http.get(base + path) as r:
        return r.status


I2V_BODY = {"prompt": "p", "image": "https://x.org/a.jpg", "duration": 15, "resolution": "720P"}


@pytest.mark.parametrize(
    ("model", "body", "status", "detail"),
    [
        ("wan2.6-i2v", I2V_BODY, 202, None),
        ("wan2.5-i2v-preview", I2V_BODY, 400, "duration: must be 5 or 10, got 15"),
        ("wan2.6-t2v", {"prompt": "p", "size": "1280*720"}, 202, None),
        ("wan2.6-t2v", {"prompt": "p", "resolution": "720P"}, 400, "resolution: wan2.6-t2v does"),
        ("wan2.6-t2v", {"prompt": "p", "image": "https://x.org/a.jpg"}, 400, "image: wan2.6-t2v"),
        ("wan2.1-kf2v-plus", {"prompt": "p", "image": "https://x.org/a.jpg"}, 400,
         "last_frame: field required"),
        ("wan2.2-i2v-plus", {**I2V_BODY, "duration": 5, "resolution": "1080P", "audio": True},
         400, "audio: wan2.2-i2v-plus does not take this field"),
        ("wan2.6-i2v-spark", {**I2V_BODY, "multi_shots": "multi"}, 400, "resolution: must be one"),
        ("wan2.6-i2v-spark", {**I2V_BODY, "resolution": "1080P", "multi_shots": "multi"}, 202,
         None),
        ("wan2.2-i2v-flash", {"prompt": "p" * 801, "image": "https://x.org/a.jpg"}, 400,
         "prompt: 801 characters is over the limit of 800"),
    ],
)  # fmt: skip
async def test_the_simulator_applies_each_models_rules(
    model: str, body: dict[str, Any], status: int, detail: str | None
) -> None:
    """Each model's path takes what that model takes and answers 400 with the envelope else."""
    async with serve(SimConfig(seed=1)) as running:
        got, answer = await _post(running.base_url, get_model(model).path, body)
        assert got == status, answer
        if detail is not None:
            error = answer["task_info"]["error"]
            assert (error["code"], answer["task_info"]["status"]) == (2001, "failed")
            assert error["detail"].startswith(detail)
        assert running.sim.stats()["creates_by_path"] == {get_model(model).path: 1}


async def test_paths_of_no_model_answer_404_and_tasks_live_at_their_model() -> None:
    """A path of no model (or of the wrong vendor) is 404; a task is found only at its model."""
    async with serve(SimConfig(seed=2)) as running:
        base = running.base_url
        for path in ("/vendors/alibaba/v1/wan9/generation",
                     "/vendors/alibaba/v1/wan2.6-i2v-spark/generation"):  # fmt: skip
            got, answer = await _post(base, path, I2V_BODY)
            assert got == 404
            assert "the models are: wan2.6-i2v," in answer["detail"]
        got, answer = await _post(base, get_model("wan2.6-i2v").path, I2V_BODY)
        task = answer["task_info"]["id"]
        assert await _get(base, f"{get_model('wan2.6-i2v').path}/{task}") == 200
        assert await _get(base, f"{get_model('wan2.5-i2v-preview').path}/{task}") == 404
        stats = running.sim.stats()
    assert stats["not_found_404"] == 2  # the two paths of no model; the task lookup is apart
    assert stats["creates_by_path"] == {get_model("wan2.6-i2v").path: 1}


@pytest.mark.parametrize("seconds", [5, 10, 15])
def test_tiny_mp4_lasts_the_seconds_asked(seconds: int) -> None:
    """The simulator's clips last the duration asked, as mutagen reads them."""
    assert MP4(io.BytesIO(tiny_mp4("x", seconds=seconds))).info.length == seconds


REPO = Path(__file__).resolve().parent.parent


def test_the_storyboard_jobs_draft_on_flash_and_finish_on_wan26(tmp_path: Path) -> None:
    """jobs/storyboard-*.yaml: four shots drafted on flash ($0.30 by hand: 4 x 5 s x $0.015)
    and finished on wan2.6-i2v ($6.00: 4 x 10 s x $0.15), each at its model's path."""
    draft, final = (REPO / "jobs" / f"storyboard-{step}.yaml" for step in ("draft", "final"))
    for source, cost in ((draft, "$0.30"), (final, "$6.00")):
        dry = invoke(["run", str(source), "--dry-run", "--out", str(tmp_path / "dry")])
        assert dry.exit_code == 0, dry.output
        assert re.search(rf"^  new\s+\{cost}$", dry.output, re.MULTILINE), dry.output
    with serve_in_thread(SimConfig(seed=9, **INSTANT)) as sim:
        for source, out in ((draft, tmp_path / "draft"), (final, tmp_path / "final")):
            result = invoke(["run", str(source), *fast_options(sim.base_url, out)])
            assert result.exit_code == 0, result.output
        stats = sim.sim.stats()
        seconds = sorted(t["seconds"] for t in sim.sim.tasks())
    assert stats["creates_by_path"] == {
        "/vendors/alibaba/v1/wan2.2-i2v-flash/generation": 4,
        "/vendors/alibaba/v1/wan2.6-i2v/generation": 4,
    }
    assert seconds == [5] * 4 + [10] * 4


def test_a_duration_that_is_not_a_number_is_an_invalid_row_not_a_crash(tmp_path: Path) -> None:
    """`five` or `5.5` in duration: those rows are invalid, the run goes on for the others."""
    sheet = tmp_path / "d.csv"
    sheet.write_text(
        "prompt,image,duration\na,https://x.org/a.jpg,five\nb,https://x.org/b.jpg,5.5\n"
        "c,https://x.org/c.jpg,5\n",
        encoding="utf-8",
    )
    with serve_in_thread(SimConfig(seed=3, **INSTANT)) as sim:
        result = invoke(["run", str(sheet), *fast_options(sim.base_url, tmp_path / "run")])
    assert result.exit_code == 1
    assert "row 1: duration: wan2.5-i2v-preview takes 5 or 10, got five" in result.output
    assert [r["status"] for r in read_results(tmp_path / "run")] == [
        "invalid", "invalid", "succeeded",
    ]  # fmt: skip


def test_a_model_the_provider_does_not_serve_holds_only_its_rows(tmp_path: Path) -> None:
    """A 404 at one model's path keeps that model's rows pending with the reason; the rows of
    the other models are sent and succeed."""
    groups = [("wan2.6-i2v-spark", {"resolution": "1080P"}, 2, 0.75), ("wan2.6-i2v", {}, 3, 0.5)]
    sheet = mixed_sheet(tmp_path, groups)
    config = SimConfig(seed=10, unserved_models=("wan2.6-i2v-spark",), **INSTANT)
    with serve_in_thread(config) as sim:
        result = invoke(["run", str(sheet), *fast_options(sim.base_url, tmp_path / "run")])
        stats = sim.sim.stats()
    assert result.exit_code == 1
    assert stats["creates_by_path"] == {"/vendors/alibaba/v1/wan2.6-i2v/generation": 3}
    assert stats["not_found_404"] >= 1
    rows = read_results(tmp_path / "run")
    assert [r["status"] for r in rows] == ["pending"] * 2 + ["succeeded"] * 3
    assert all("check --base-url and --model" in r["error"] for r in rows[:2])
