"""Job files: told apart from YAML sheets, paths relative to the job file, every key checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchwan.errors import InputError
from batchwan.sheet.jobfile import load_source
from batchwan.values import JobSpec

REPO = Path(__file__).resolve().parent.parent


def job(tmp_path: Path, text: str, name: str = "job.yaml") -> Path:
    """Write a job file into tmp_path/jobs and return its path."""
    folder = tmp_path / "jobs"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("s.csv", "prompt\nx\n"),
        ("s.jsonl", '{"prompt": "x"}\n'),
        ("s.yaml", "- prompt: x\n"),
        ("s.yml", "rows:\n  - prompt: x\ndefaults:\n  duration: 5\n"),
        ("s.xlsx", "not read here"),
    ],
)
def test_a_sheet_is_its_own_source(tmp_path: Path, name: str, text: str) -> None:
    """Any sheet, a YAML sheet included, gives JobSpec(sheet=path) with the defaults."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    assert load_source(path) == JobSpec(sheet=path)


def test_job_file_reads_every_key(tmp_path: Path) -> None:
    """Every key lands in the JobSpec; sheet and out are relative to the job file."""
    path = job(
        tmp_path,
        "sheet: ../sheets/a.csv\ncolumns: {prompt: Text, id: Code}\n"
        "defaults: {duration: 10, audio: false}\nmodel: wan2.6-i2v\nout: ../runs/x\n"
        "concurrency: 3\nrate: 1.5\npoll_interval: 2\nmax_cost: 12\nprices: {1080p: 0.2}\n",
    )
    spec = load_source(path)
    assert spec == JobSpec(
        sheet=tmp_path / "sheets" / "a.csv",
        columns={"prompt": "Text", "id": "Code"},
        defaults={"duration": 10, "audio": False},
        model="wan2.6-i2v",
        out=tmp_path / "runs" / "x",
        concurrency=3,
        rate=1.5,
        poll_interval=2.0,
        max_cost=12.0,
        prices={"1080P": 0.2},
    )


def test_prices_keyed_by_bare_numbers_mean_those_resolutions(tmp_path: Path) -> None:
    """`720:` in a price table (YAML reads it as the number 720) prices 720P."""
    spec = load_source(job(tmp_path, "sheet: a.csv\nprices: {720: 0.2}\n"))
    assert spec.prices == {"720P": 0.2}


def test_minimal_job_file_keeps_defaults(tmp_path: Path) -> None:
    """A job file with only `sheet:` keeps every other default; null means unset."""
    spec = load_source(job(tmp_path, "sheet: a.csv\nmax_cost: null\n"))
    assert spec == JobSpec(sheet=tmp_path / "jobs" / "a.csv")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sheet: a.csv\nmax_cots: 5\n", "unknown key 'max_cots'"),
        ("sheet: 5\n", "`sheet:` must be text, got 5"),
        ("sheet: ''\n", "`sheet:` must be text"),
        ("sheet: a.csv\nconcurrency: 0\n", "`concurrency:` must be a whole number from 1 to 512"),
        ("sheet: a.csv\nconcurrency: 2.5\n", "`concurrency:` must be a whole number"),
        ("sheet: a.csv\nconcurrency: true\n", "`concurrency:` must be a whole number"),
        ("sheet: a.csv\nconcurrency: 513\n", "`concurrency:` must be a whole number from 1 to 512"),
        ("sheet: a.csv\nrate: 0\n", "`rate:` must be a number of at least 0.01, got 0"),
        ("sheet: a.csv\nrate: fast\n", "`rate:` must be a number of at least 0.01, got 'fast'"),
        ("sheet: a.csv\nrate: 0.000001\n", "`rate:` must be a number of at least 0.01"),
        ("sheet: a.csv\npoll_interval: .nan\n", "`poll_interval:` must be a number of at least"),
        ("sheet: a.csv\npoll_interval: 1e-9\n", "`poll_interval:` must be a number of at least"),
        ('sheet: a.csv\nout: "r\\0"\n', "`out:` holds a NUL character"),
        ('sheet: "a\\0.csv"\n', "`sheet:` holds a NUL character"),
        ("sheet: a.csv\nmax_cost: -1\n", "`max_cost:` must be a number of at least 0"),
        ("sheet: a.csv\ncolumns: [prompt]\n", "`columns:` must be a mapping, got list"),
        ("sheet: a.csv\ncolumns: {text: T}\n", "`columns:` maps 'text', which is not an API field"),
        ("sheet: a.csv\ncolumns: {prompt: 5}\n", "`columns: prompt:` must be text"),
        ("sheet: a.csv\ndefaults: {colour: red}\n", "`defaults:` sets 'colour'"),
        ("sheet: a.csv\ndefaults: {seed: [1]}\n", "`defaults: seed` must be a single value"),
        ("sheet: a.csv\nprices: {4K: 1}\n", "`prices:` has '4K'"),
        ("sheet: a.csv\nprices: {720P: -1}\n", "`prices: 720P:` must be a number of at least 0"),
        ("sheet: [a\n", "is not valid YAML"),
    ],
)
def test_bad_job_files_name_the_file_and_the_reason(
    tmp_path: Path, text: str, message: str
) -> None:
    """Every bad value is one InputError naming the job file and what to change."""
    path = job(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_source(path)
    assert str(info.value).startswith(str(path))
    assert message in str(info.value)


def test_unreadable_job_file_is_an_input_error(tmp_path: Path) -> None:
    """A YAML source that does not exist is an InputError, not a traceback."""
    with pytest.raises(InputError, match="no such file"):
        load_source(tmp_path / "gone.yaml")


@pytest.mark.parametrize("name", ["demo.yaml", "example.yaml"])
def test_shipped_job_files_load(name: str) -> None:
    """jobs/demo.yaml and jobs/example.yaml are valid and point at samples/demo.csv."""
    spec = load_source(REPO / "jobs" / name)
    assert spec.sheet == REPO / "samples" / "demo.csv"
    assert spec.sheet.is_file()


def test_demo_job_is_quick() -> None:
    """The demo job runs four at a time, four creates a second, polling every second."""
    spec = load_source(REPO / "jobs" / "demo.yaml")
    assert (spec.concurrency, spec.rate, spec.poll_interval) == (4, 4.0, 1.0)
