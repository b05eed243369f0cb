"""The summary's sums and its breakdowns by model and resolution, from one tally of the rows,
equal the same sums made row by row."""

from __future__ import annotations

import random
import statistics

from batchwan.outputs.groups import Group, breakdown, by_model, by_resolution
from batchwan.outputs.results import summarize
from batchwan.values import COMMITTED, RowRecord, Status
from tests.recordfactory import record


def _mixed(count: int) -> list[RowRecord]:
    """Rows of every status over a few models, resolutions, durations and costs, some
    succeeded without a start time, in no order."""
    pick = random.Random(7)
    rows = []
    for n in range(count):
        status = pick.choice(list(Status))
        fields = {
            "model": pick.choice(["wan2.5-i2v-preview", "wan2.2-i2v-plus", ""]),
            "resolution": pick.choice(["480P", "720P", "1080P"]),
            "duration": pick.choice([5, 10]),
            "cost": pick.choice([0.0, 0.1, 0.25, 0.5, 2.25]),
        }
        if status is Status.SUCCEEDED and n % 7 == 0:
            fields["submitted_at"] = None
        rows.append(record(n + 1, status, **fields))
    return rows


def _as_shown(groups: list[Group], name: str) -> list[dict[str, object]]:
    return [g.as_json([name]) for g in groups]


def test_breakdowns_by_model_and_resolution_equal_those_made_row_by_row() -> None:
    """Counts, seconds, the three costs and the median render time of every group."""
    rows = _mixed(600)
    row_by_row = breakdown(rows, lambda r: (r.model,))
    assert _as_shown(by_model(rows), "model") == _as_shown(row_by_row, "model")
    row_by_row = breakdown(rows, lambda r: (r.resolution,))
    assert _as_shown(by_resolution(rows), "resolution") == _as_shown(row_by_row, "resolution")


def test_the_summary_sums_equal_those_made_row_by_row() -> None:
    """Counts per status, seconds by resolution, costs and render times of the whole run."""
    rows = _mixed(600)
    got = summarize(rows, {})
    sent = [r for r in rows if r.status not in (Status.INVALID, Status.DUPLICATE)]
    assert got["counts"] == {s.value: sum(r.status is s for r in rows) for s in Status}
    seconds: dict[str, int] = {}
    for r in sent:
        seconds[r.resolution] = seconds.get(r.resolution, 0) + r.duration
    assert got["video_seconds"] == {"total": sum(seconds.values()), "by_resolution": seconds}
    assert got["cost"]["estimated"] == round(sum(r.cost for r in sent), 2)
    assert got["cost"]["committed"] == round(sum(r.cost for r in sent if r.status in COMMITTED), 2)
    spent = [r for r in rows if r.status is Status.SUCCEEDED]
    assert got["cost"]["spent"] == round(sum(r.cost for r in spent), 2)
    renders = [
        (r.finished_at - r.submitted_at).total_seconds()
        for r in spent
        if r.submitted_at and r.finished_at
    ]
    assert got["timings"]["render_seconds_median"] == statistics.median(renders)
