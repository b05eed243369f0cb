"""csv-spectrum: every CSV parses to the rows its JSON expects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batchwan.sheet.loader import read_sheet

pytestmark = pytest.mark.corpus

NAMES = [
    "comma_in_quotes",
    "empty",
    "empty_crlf",
    "escaped_quotes",
    "json",
    "newlines",
    "newlines_crlf",
    "quotes_and_newlines",
    "simple",
    "simple_crlf",
    "utf8",
]  # location_coordinates is left out: its expected JSON is wrong upstream


@pytest.mark.parametrize("name", NAMES)
def test_csv_spectrum(testdata: Path, name: str) -> None:
    """Each csv-spectrum file gives exactly the rows of its JSON, positions 1..n."""
    folder = testdata / "csv-spectrum"
    expected = json.loads((folder / "json" / f"{name}.json").read_text(encoding="utf-8"))
    sheet = read_sheet(folder / "csvs" / f"{name}.csv")
    assert [row.cells for row in sheet.rows] == expected
    assert [row.position for row in sheet.rows] == list(range(1, len(expected) + 1))
    assert all(row.read_error is None for row in sheet.rows)
    assert list(sheet.columns) == list(expected[0])


def test_every_spectrum_file_is_covered(testdata: Path) -> None:
    """No csv-spectrum file is silently left out, apart from the known-bad one."""
    names = {p.stem for p in (testdata / "csv-spectrum" / "csvs").glob("*.csv")}
    assert names == {*NAMES, "location_coordinates"}
