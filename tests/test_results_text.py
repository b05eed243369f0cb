"""results.csv's text is the csv writer over ``csv_text`` of every typed cell, however it is
rendered: awkward values (formulas, quotes, line breaks, zero and negative amounts, times of
other zones, data: URIs, numbers in the request) included."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta, timezone

from recordfactory import T0, record

from batchwan.outputs.cells import as_text_cell, csv_text
from batchwan.outputs.results import _layout, _typed_rows, results_table, results_text
from batchwan.values import RowRecord, Status

_DATA = "data:image/png;base64," + "A" * 100


def _plain_text(records: list[RowRecord], extra: list[str]) -> str:
    """The text as the typed table gives it, every cell through ``csv_text`` and the writer."""
    header, request_columns, own = _layout(records, extra, None)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([as_text_cell(name) for name in header])
    writer.writerows(
        [csv_text(c) for c in row] for row in _typed_rows(records, request_columns, own)
    )
    return buffer.getvalue()


def _awkward() -> list[RowRecord]:
    east = timezone(timedelta(hours=2))
    return [
        record(1, request={"prompt": "=1+2", "image": _DATA, "seed": 7}, row_id="-r1",
               extra={"note": 'say "hi", twice'}, line=2),
        record(2, Status.FAILED, error="line one\nline two", cost=-0.0, task_id="+t",
               request={"prompt": "", "image": "", "seed": 1.5, "negative_prompt": "@x"},
               extra={"note": "\tlead"}),
        record(3, Status.INVALID, cost=0.0, error="a,b\r\nc", line=None, model="",
               request={"model": "wan2.2-t2v-plus", "prompt": 5, "size": "1280*720"}),
        record(4, cost=0.123456, submitted_at=T0.astimezone(east),
               finished_at=datetime(2025, 3, 1, 10, 0, 0, 500, tzinfo=UTC),
               request={"prompt": "p", "image": "https://x.example/a.jpg", "audio": True,
                        "extra_field": {"b": 1, "a": [2]}}),
        record(5, cost=0.123456, submitted_at=T0, finished_at=T0, extra={"note": "-5"}),
        record(6, cost=float("-inf"), video_url="-inf", extra={"note": ""}),
        record(7, cost=2, attempts=True, request={"prompt": "data:short"}),
    ]  # fmt: skip


def test_awkward_rows_render_as_csv_text_over_the_typed_table() -> None:
    records = _awkward()
    assert results_text(records, ["note"]) == _plain_text(records, ["note"])


def test_plain_rows_render_as_csv_text_over_the_typed_table() -> None:
    records = [
        record(i, submitted_at=T0, finished_at=T0 + timedelta(seconds=i)) for i in range(1, 50)
    ]
    assert results_text(records) == _plain_text(records, [])


def test_the_table_of_a_refresh_is_csv_text_over_the_typed_table() -> None:
    """A refresh renders a few rows under fixed request columns, the usual ones or not."""
    records = _awkward()
    usual = ["model", "prompt", "image", "resolution", "duration", "seed", "size", "audio"]
    for part, columns in ((records, usual), (records[1:3], ["prompt"])):
        _, request_columns, own = _layout(part, ["note"], columns)
        typed = _typed_rows(part, request_columns, own)
        assert results_table(part, ["note"], columns)[1] == [
            [csv_text(c) for c in row] for row in typed
        ]
