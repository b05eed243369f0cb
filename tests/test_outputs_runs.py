"""Across reruns and by group: summary.json's run lines and summed time, --group-by on run,
status and report, and `status --json` against its schema."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from batchwan.sim.simulator import SimConfig, serve_in_thread
from tests.runhelpers import fast_options, invoke, write_sheet

_COUNTS = {
    "type": "object",
    "required": ["succeeded", "failed", "unknown", "invalid", "duplicate", "running", "pending"],
    "additionalProperties": {"type": "integer", "minimum": 0},
}
_MONEY = {"type": "number", "minimum": 0}
_GROUP = {
    "type": "object",
    "required": ["key", "rows", "counts", "video_seconds", "cost", "render_seconds_median"],
    "properties": {
        "key": {"type": "object", "additionalProperties": {"type": "string"}},
        "rows": {"type": "integer"},
        "counts": _COUNTS,
        "video_seconds": {"type": "integer"},
        "cost": {
            "type": "object",
            "required": ["estimated", "committed", "spent"],
            "additionalProperties": _MONEY,
        },
        "render_seconds_median": {"type": ["number", "null"]},
    },
}
_TIME = {"type": ["string", "null"]}
#: The document `status --json` prints; scripts rely on these keys and types.
STATUS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": [
        "schema",
        "run_dir",
        "sheet",
        "model",
        "rows",
        "counts",
        "all_succeeded",
        "cost",
        "video_seconds",
        "timings",
        "runs",
        "group_by",
        "breakdowns",
        "attention",
        "rows_detail",
    ],
    "properties": {
        "schema": {"const": 1},
        "run_dir": {"type": "string"},
        "sheet": {"type": ["string", "null"]},
        "model": {"type": ["string", "null"]},
        "rows": {"type": "integer", "minimum": 0},
        "counts": _COUNTS,
        "all_succeeded": {"type": "boolean"},
        "cost": {
            "type": "object",
            "required": ["currency", "estimated", "committed", "spent", "max_cost"],
            "properties": {
                "currency": {"type": "string"},
                "estimated": _MONEY,
                "committed": _MONEY,
                "spent": _MONEY,
                "max_cost": {"type": ["number", "null"]},
            },
        },
        "video_seconds": {
            "type": "object",
            "required": ["total", "by_resolution"],
            "properties": {
                "total": {"type": "number"},
                "by_resolution": {"type": "object", "additionalProperties": {"type": "number"}},
            },
        },
        "timings": {
            "type": "object",
            "required": [
                "started_at",
                "updated_at",
                "running_seconds",
                "elapsed_seconds",
                "runs",
                "render_seconds_median",
                "render_seconds_p90",
            ],
            "properties": {
                "started_at": _TIME,
                "updated_at": _TIME,
                "running_seconds": {"type": ["number", "null"]},
                "runs": {"type": "integer"},
            },
        },
        "runs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["number", "started_at", "ended_at", "seconds", "sent", "collected"],
                "properties": {
                    "number": {"type": "integer"},
                    "started_at": {"type": "string"},
                    "ended_at": _TIME,
                    "seconds": {"type": "number", "minimum": 0},
                    "sent": {"type": "integer"},
                    "collected": {"type": "integer"},
                },
            },
        },
        "group_by": {"type": "array", "items": {"type": "string"}},
        "breakdowns": {
            "type": "object",
            "required": ["by_model", "by_resolution", "by_group"],
            "properties": {
                "by_model": {"type": "array", "items": _GROUP},
                "by_resolution": {"type": "array", "items": _GROUP},
                "by_group": {
                    "type": "object",
                    "required": ["columns", "groups"],
                    "properties": {"groups": {"type": "array", "items": _GROUP}},
                },
            },
        },
        "attention": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["row", "id", "status", "reason"],
                "properties": {"row": {"type": "integer"}, "status": {"type": "string"}},
            },
        },
        "rows_detail": {"type": ["array", "null"]},
    },
}


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sheet that grows between three runs (10, then 5 and 5 more rows), grouped by campaign
    on the first run only."""
    folder = tmp_path_factory.mktemp("grow")
    sheet = write_sheet(folder, 10)
    out = folder / "run"
    with serve_in_thread(SimConfig(seed=21)) as sim:
        first = invoke(["run", str(sheet), *fast_options(sim.base_url, out), "--group-by",
                        "campaign"])  # fmt: skip
        assert first.exit_code == 0, first.output
        for start in (11, 16):
            write_sheet(folder, 5, start=start)
            again = invoke(["run", str(sheet), *fast_options(sim.base_url, out)])
            assert again.exit_code == 0, again.output
    return out


def test_summary_holds_three_run_lines_and_the_summed_time(three_runs: Path) -> None:
    """summary.json has one line per run with what it sent and collected; the running time is
    their sum, the start the first run's, and the idle time between runs is not counted."""
    summary = json.loads((three_runs / "summary.json").read_text())
    runs = summary["runs"]
    assert [r["number"] for r in runs] == [1, 2, 3]
    assert [r["sent"] for r in runs] == [10, 5, 5]
    assert [r["collected"] for r in runs] == [10, 5, 5]
    timings = summary["timings"]
    assert timings["runs"] == 3
    assert timings["running_seconds"] == pytest.approx(sum(r["seconds"] for r in runs), abs=0.01)
    for run in runs:
        assert run["seconds"] == pytest.approx(
            (_when(run["ended_at"]) - _when(run["started_at"])).total_seconds(), abs=0.01
        )
    assert _when(timings["started_at"]) <= _when(runs[0]["started_at"])
    assert _when(timings["updated_at"]) >= _when(runs[2]["ended_at"])
    assert timings["elapsed_seconds"] >= timings["running_seconds"]


def test_group_by_given_once_is_kept_for_later_runs_status_and_report(three_runs: Path) -> None:
    """--group-by on the first run is stored: summary.json after the third run, status and the
    report break down by campaign without being told again."""
    summary = json.loads((three_runs / "summary.json").read_text())
    assert summary["group_by"] == ["campaign"]
    groups = summary["breakdowns"]["by_group"]["groups"]
    assert [(g["key"]["campaign"], g["rows"]) for g in groups] == [("c0", 6), ("c1", 7), ("c2", 7)]
    assert sum(g["cost"]["spent"] for g in groups) == pytest.approx(summary["cost"]["spent"])
    status = invoke(["status", str(three_runs)])
    assert status.exit_code == 0
    assert "By campaign" in status.output
    assert "Runs: 3" in status.output
    report = invoke(["report", str(three_runs)])
    assert report.exit_code == 0
    page = (three_runs / "report.html").read_text(encoding="utf-8")
    assert 'data-group="by_group"' in page


def test_status_json_matches_its_schema(three_runs: Path) -> None:
    """`status --json` prints one document that validates against the published schema, with
    the same counts as the text and the runs."""
    result = invoke(["status", str(three_runs), "--json", "--rows"])
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    jsonschema.validate(document, STATUS_SCHEMA)
    assert document["counts"]["succeeded"] == 20
    assert len(document["runs"]) == 3
    assert len(document["rows_detail"]) == 20
    assert document["group_by"] == ["campaign"]


def test_status_json_of_a_run_with_problems_validates(tmp_path: Path) -> None:
    """A run with failed, invalid and unsent rows gives a valid document listing them."""
    from recordfactory import make_run

    result = invoke(["status", str(make_run(tmp_path)), "--json"])
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    jsonschema.validate(document, STATUS_SCHEMA)
    assert [a["status"] for a in document["attention"]] == ["failed", "invalid"]
    assert document["rows_detail"] is None


@pytest.mark.parametrize("command", ["status", "report"])
def test_unknown_group_by_column_is_refused_naming_the_columns(
    three_runs: Path, command: str
) -> None:
    """A column the sheet does not have exits 2 and names the columns it has."""
    result = invoke([command, str(three_runs), "--group-by", "campaign,owner"])
    assert result.exit_code == 2
    assert "no column owner among the sheet's own columns (it has: campaign)" in result.stderr


def test_run_refuses_an_unknown_group_by_column_before_sending(tmp_path: Path) -> None:
    """`run --group-by` with a missing column exits 2 before anything is sent."""
    sheet = write_sheet(tmp_path, 3)
    with serve_in_thread(SimConfig(seed=5)) as sim:
        result = invoke(
            ["run", str(sheet), *fast_options(sim.base_url, tmp_path / "run"), "--group-by", "x"]
        )
        assert sim.sim.stats()["creates_received"] == 0
    assert result.exit_code == 2
    assert "--group-by: no column x among the sheet's own columns (it has: campaign)" in (
        result.stderr
    )


def test_job_file_group_by(tmp_path: Path) -> None:
    """`group_by:` in a job file breaks summary.json down by those columns."""
    write_sheet(tmp_path, 4)
    job = tmp_path / "job.yaml"
    job.write_text("sheet: sheet.csv\ngroup_by: [campaign]\n", encoding="utf-8")
    with serve_in_thread(SimConfig(seed=6)) as sim:
        result = invoke(["run", str(job), *fast_options(sim.base_url, tmp_path / "run")])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["breakdowns"]["by_group"]["columns"] == ["campaign"]


def test_results_of_a_real_run_read_with_the_right_types(three_runs: Path) -> None:
    """pandas reads a real run's results.csv with integer rows, attempts and durations, float
    cost, and the request as sent beside them."""
    import pandas as pd

    frame = pd.read_csv(three_runs / "results.csv")
    assert len(frame) == 20
    for column in ("row", "attempts", "duration"):
        assert frame[column].dtype == "int64", column
    assert frame["cost"].dtype == "float64"
    assert set(frame["model"]) == {"wan2.5-i2v-preview"}
    assert set(frame["resolution"]) == {"480P"}
    assert frame["image"].str.startswith("https://images.example.com/").all()
