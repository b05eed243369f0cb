"""yaml-test-suite: every input loads as a sheet or job file, or gives one clean InputError."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import pytest

from batchwan.errors import InputError
from batchwan.sheet.jobfile import load_source
from batchwan.sheet.loader import read_sheet

pytestmark = pytest.mark.corpus


def cases(testdata: Path) -> list[Path]:
    """Every in.yaml of the suite, sub-cases included."""
    return sorted((testdata / "yaml-test-suite").rglob("in.yaml"))


def test_suite_is_complete(testdata: Path) -> None:
    """All 402 cases are found, so none is skipped silently."""
    assert len(cases(testdata)) == 402


def outcome(path: Path) -> str:
    """What loading one file as a SOURCE gives: sheet, job, or the InputError's text."""
    try:
        spec = load_source(path)
        if spec.sheet != path:
            return "job"
        sheet = read_sheet(path)
    except InputError as exc:
        return str(exc)
    positions = [r.position for r in sheet.rows]
    return "sheet" if positions == list(range(1, len(positions) + 1)) else "bad positions"


def test_every_case_loads_or_is_a_clean_input_error(testdata: Path, tmp_path: Path) -> None:
    """read_sheet and load_source give a result or InputError naming the file, nothing else."""
    outcomes = {"sheet": 0, "job": 0, "refused": 0}
    for number, case in enumerate(cases(testdata)):
        path = tmp_path / f"case{number}.yaml"
        shutil.copyfile(case, path)
        result = outcome(path)
        if result in ("sheet", "job"):
            outcomes[result] += 1
        else:
            assert result.startswith(f"{path}: "), (case, result)
            outcomes["refused"] += 1
    assert sum(outcomes.values()) == 402
    assert outcomes["sheet"] > 0
    assert outcomes["refused"] > 0


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_error_cases_are_refused_or_loaded(testdata: Path, tmp_path: Path, suffix: str) -> None:
    """Cases the suite marks as errors never raise anything but InputError."""
    for number, case in enumerate(cases(testdata)):
        if not (case.parent / "error").exists():
            continue
        path = tmp_path / f"err{number}{suffix}"
        shutil.copyfile(case, path)
        with contextlib.suppress(InputError):
            read_sheet(path)
