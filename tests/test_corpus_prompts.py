"""The VBench i2v prompt set (1,118 rows) loads and validates as JSONL and as CSV."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from urllib.parse import quote

import pytest

from batchwan.checks.validation import check_rows
from batchwan.sheet.jobfile import load_source
from batchwan.sheet.loader import read_sheet
from batchwan.values import Status

pytestmark = pytest.mark.corpus

BASE = "https://images.example.com/vbench/"


def prompts(testdata: Path) -> list[dict[str, object]]:
    """The VBench records."""
    path = testdata / "prompts" / "vbench2_i2v_full_info.json"
    records: list[dict[str, object]] = json.loads(path.read_text(encoding="utf-8"))
    return records


def write_rows(path: Path, records: list[dict[str, object]]) -> None:
    """Write the records as a sheet: prompt, image URL, and the user's own columns."""
    rows = [
        {
            "prompt": r["prompt_en"],
            "image": BASE + quote(str(r["image_name"])),
            "image_type": r["image_type"],
            "dimension": ";".join(map(str, r["dimension"])),  # type: ignore[call-overload]  # a JSON value, a list here
        }
        for r in records
    ]
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        return
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_vbench_prompts_validate(testdata: Path, tmp_path: Path, suffix: str) -> None:
    """All 1,118 rows load, every one is valid, keys are unique, own columns are carried."""
    records = prompts(testdata)
    assert len(records) == 1118
    path = tmp_path / f"vbench{suffix}"
    write_rows(path, records)
    spec = load_source(path)
    rows = check_rows(read_sheet(spec.sheet), spec)
    assert len(rows) == 1118
    assert [r.status for r in rows] == [Status.PENDING] * 1118
    assert len({r.key for r in rows}) == 1118
    assert rows[0].request["prompt"] == records[0]["prompt_en"]
    assert list(rows[0].extra) == ["image_type", "dimension"]
    apostrophes = [r for r in rows if "%27" in r.request["image"]]
    assert len(apostrophes) >= 5


def test_unquoted_image_names_are_caught(testdata: Path, tmp_path: Path) -> None:
    """Image names with spaces pasted into URLs unencoded are refused with how to fix them."""
    records = prompts(testdata)[:50]
    path = tmp_path / "raw.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["prompt", "image"])
        for r in records:
            writer.writerow([r["prompt_en"], BASE + str(r["image_name"])])
    rows = check_rows(read_sheet(path), load_source(path))
    spaced = [r for r in rows if " " in r.request["image"]]
    assert spaced
    assert all(r.status is Status.INVALID for r in spaced)
    assert all(r.issues[0].message.endswith("contains a space; write it as %20") for r in spaced)
