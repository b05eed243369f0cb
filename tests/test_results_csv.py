"""results.csv as an analyst opens it: columns, types pandas infers alone, and escaping only
where a spreadsheet would really run a cell."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest
from recordfactory import T0, record

from batchwan.outputs.cells import as_text_cell, is_plain_number
from batchwan.outputs.results import LEADING_COLUMNS, write_results_csv
from batchwan.values import Status


def _records() -> list:
    return [
        record(1, request={"prompt": "p1", "image": "frames/a.png", "seed": 7,
                           "duration": 5, "resolution": "720P"},
               model="wan2.5-i2v-preview", line=2, extra={"offset": "-5", "note": "=1+2"}),
        record(2, Status.FAILED, error="-A1+1 bad", model="wan2.5-i2v-preview", line=3,
               request={"prompt": "p2", "image": "https://x.example/b.jpg",
                        "negative_prompt": "blur"},
               extra={"offset": "+3", "note": "@SUM(A1)"}),
        record(3, Status.INVALID, cost=0.0, error="duration: must be 5 or 10, got 7", line=4,
               extra={"offset": "-0.5", "note": "+A1"}),
        record(4, Status.PENDING, line=5, extra={"offset": "1e3", "note": "\tlead"}),
    ]  # fmt: skip


def test_columns_leading_then_request_cost_line_and_own(tmp_path: Path) -> None:
    """The interface's ten columns lead, then the request as sent (model, prompt, image,
    resolution, duration, seed, and the other fields a row set), cost, line, own columns."""
    write_results_csv(tmp_path, _records(), ["offset", "note"])
    with (tmp_path / "results.csv").open(newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    assert header == [
        *LEADING_COLUMNS, "model", "prompt", "image", "resolution", "duration", "seed",
        "negative_prompt", "cost", "line", "offset", "note",
    ]  # fmt: skip


def test_pandas_reads_the_right_types_without_options(tmp_path: Path) -> None:
    """pandas infers row, attempts, duration as int64, cost as float64, a negative-number own
    column as a number, status as text; the request's image is the path the sheet gave."""
    write_results_csv(tmp_path, _records(), ["offset", "note"])
    frame = pd.read_csv(tmp_path / "results.csv")
    dtypes = frame.dtypes.to_dict()
    assert dtypes["row"] == "int64"
    assert dtypes["attempts"] == "int64"
    assert dtypes["duration"] == "int64"
    assert dtypes["cost"] == "float64"
    assert dtypes["line"] == "int64"
    assert dtypes["offset"] == "float64"
    assert pd.api.types.is_string_dtype(dtypes["status"]) or dtypes["status"] == "object"
    assert frame["offset"].tolist() == [-5.0, 3.0, -0.5, 1000.0]
    assert frame["image"].tolist()[:2] == ["frames/a.png", "https://x.example/b.jpg"]
    assert frame["model"].tolist()[0] == "wan2.5-i2v-preview"
    assert frame["seed"].tolist()[0] == 7
    times = pd.to_datetime(frame["submitted_at"], utc=True)
    assert times[0] == pd.Timestamp(T0) + pd.Timedelta(seconds=10)


@pytest.mark.parametrize("text", ["-5", "+3", "-0.5", "1e3", "+1.5E-2", "12", ".5", "-.5"])
def test_plain_numbers_stay_numbers(text: str) -> None:
    """A number typed with a sign or an exponent is not a formula and is written as it is."""
    assert is_plain_number(text)
    assert as_text_cell(text) == text


@pytest.mark.parametrize(
    "text", ["=1+2", "@SUM(A1)", "+A1", "-A1+1", "\tlead", "\rlead", "-", "+", "=", "-5 apples"]
)
def test_formulas_are_escaped(text: str) -> None:
    """What a spreadsheet would run is shown as text: a leading apostrophe."""
    assert as_text_cell(text) == "'" + text


def test_cells_and_header_escaped_in_the_file(tmp_path: Path) -> None:
    """In the written file, formula-like own cells and a header named as a formula are escaped,
    while a negative number and an error text starting with a number-like sign are handled."""
    records = [record(1, extra={'=HYPERLINK("http://evil.example","x")': "=1+2"})]
    write_results_csv(tmp_path, records)
    with (tmp_path / "results.csv").open(newline="", encoding="utf-8") as handle:
        header, row = list(csv.reader(handle))
    assert header[-1] == '\'=HYPERLINK("http://evil.example","x")'
    assert row[-1] == "'=1+2"
    assert all(not cell.startswith(("=", "@")) for cell in header + row)


def test_own_column_named_like_ours_keeps_its_values(tmp_path: Path) -> None:
    """A sheet column called cost does not overwrite the billed cost: it is kept beside it."""
    write_results_csv(tmp_path, [record(1, cost=0.5, extra={"cost": "internal 12"})], ["cost"])
    frame = pd.read_csv(tmp_path / "results.csv")
    assert frame["cost"].tolist() == [0.5]
    assert frame["cost (sheet)"].tolist() == ["internal 12"]


def test_image_data_is_never_written_in_full(tmp_path: Path) -> None:
    """An image sent as a data: URI shows as a short label, never its base64."""
    data = "data:image/png;base64," + "A" * 5000
    write_results_csv(tmp_path, [record(1, request={"prompt": "p", "image": data})])
    frame = pd.read_csv(tmp_path / "results.csv")
    assert frame["image"][0] == "data:image/png;base64,AAAAAAAAAAAAAAAAAA... (5022 characters)"
