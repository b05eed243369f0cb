"""The library changes no process-wide state: switch interval, umask, csv limit, signals."""

from __future__ import annotations

import base64
import csv
import io
import os
import random
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import batchwan
from batchwan.atomic import write_text_atomic
from batchwan.sheet.fieldlimit import FIELD_LIMIT, wide_csv_fields
from batchwan.sheet.loader import read_sheet
from batchwan.sim.simulator import SimConfig, serve_in_thread
from tests.runhelpers import KEY, write_sheet


def _current_umask() -> int:
    mask = os.umask(0o022)  # the test's own round trip, before any spy is installed
    os.umask(mask)
    return mask


@pytest.fixture
def spies(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every call that would change the process's switch interval or umask."""
    calls: list[str] = []
    real_umask, real_switch = os.umask, sys.setswitchinterval

    def umask(mask: int) -> int:
        calls.append(f"os.umask({mask:o})")
        return real_umask(mask)

    def setswitchinterval(value: float) -> None:
        calls.append(f"sys.setswitchinterval({value})")
        real_switch(value)

    monkeypatch.setattr(os, "umask", umask)
    monkeypatch.setattr(sys, "setswitchinterval", setswitchinterval)
    return calls


def _state() -> dict[str, Any]:
    return {
        "switch": sys.getswitchinterval(),
        "csv": csv.field_size_limit(),
        "sigint": signal.getsignal(signal.SIGINT),
        "sigterm": signal.getsignal(signal.SIGTERM),
    }


def test_a_run_through_the_api_leaves_the_process_as_it_was(
    tmp_path: Path, spies: list[str]
) -> None:
    """batchwan.run and results on a sheet: switch interval, umask, csv limit and signal
    handlers unchanged, and no call ever changed them even for a moment."""
    sheet = write_sheet(tmp_path, 5)
    umask = _current_umask()
    spies.clear()
    before = _state()
    config = SimConfig(api_key=KEY, pending_seconds=0, processing_seconds=0)
    with serve_in_thread(config) as sim:
        frame = batchwan.run(
            sheet, out=tmp_path / "run", base_url=sim.base_url, api_key=KEY, poll_interval=0.05
        )
    batchwan.results(tmp_path / "run")
    batchwan.validate(sheet)
    assert frame["status"].tolist() == ["succeeded"] * 5
    assert spies == []
    assert _state() == before
    assert _current_umask() == umask


def test_importing_the_sheet_reader_leaves_the_csv_limit_alone() -> None:
    """The csv module's cell limit is the process's: importing batchwan does not raise it."""
    code = (
        "import csv; before = csv.field_size_limit(); "
        "import batchwan.sheet.loader, batchwan.pipeline; print(before, csv.field_size_limit())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    before, after = done.stdout.split()
    assert before == after


def _noise_png_data_uri(side: int) -> str:
    rng = random.Random(7)
    image = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def test_a_sheet_with_a_cell_over_the_csv_default_reads_and_the_limit_is_put_back(
    tmp_path: Path,
) -> None:
    """A data: URI image of over 1 MB in a CSV cell is read; the limit is as before afterwards."""
    uri = _noise_png_data_uri(600)
    assert len(uri) > 1_000_000 > csv.field_size_limit()
    sheet = tmp_path / "big.csv"
    sheet.write_text(f'prompt,image\na storm over the sea,"{uri}"\n', encoding="utf-8")
    before = csv.field_size_limit()
    assert read_sheet(sheet).rows[0].cells["image"] == uri
    assert batchwan.validate(sheet).empty
    assert csv.field_size_limit() == before


def test_concurrent_reads_never_lower_the_limit_under_each_other() -> None:
    """Threads reading at once share one raise: the limit stays up until the last one ends."""
    before = csv.field_size_limit()
    inside = threading.Barrier(4)
    leave = threading.Event()
    seen: list[int] = []

    def reader() -> None:
        with wide_csv_fields():
            inside.wait(timeout=10)
            leave.wait(timeout=10)
            seen.append(csv.field_size_limit())

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for thread in threads:
        thread.start()
    leave.set()
    for thread in threads:
        thread.join(timeout=10)
    assert seen == [max(before, FIELD_LIMIT)] * 4
    assert csv.field_size_limit() == before


def test_atomic_files_get_the_umask_without_the_umask_being_touched(
    tmp_path: Path, spies: list[str]
) -> None:
    """Results files are 0666 less the umask (0640 under 027), and os.umask is never called."""
    previous = os.umask(0o027)
    try:
        spies.clear()
        target = tmp_path / "results.csv"
        write_text_atomic(target, "row,id\n")
        write_text_atomic(target, "row,id\n1,a\n")  # replacing keeps the same rule
        calls = list(spies)
    finally:
        os.umask(previous)
    assert calls == []
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert target.read_text(encoding="utf-8") == "row,id\n1,a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["results.csv"]  # no temporary file left
