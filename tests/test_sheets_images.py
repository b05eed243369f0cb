"""Image cells as people paste them: share links, Windows paths, ~, bare names under a root."""

from __future__ import annotations

import base64
import csv
import json
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from batchwan.catalog.rules import url_problem
from batchwan.checks.imagesource import _PLAIN_URL
from batchwan.checks.sharelinks import direct_link
from batchwan.checks.validation import check_rows
from batchwan.sheet.jobfile import load_source
from batchwan.sheet.loader import read_spec_sheet
from batchwan.sim.simulator import RunningSimulator, SimConfig, serve_in_thread
from tests.runhelpers import fast_options, invoke
from tests.test_sheets import sent_bodies

DRIVE_ID = "1AbCdEfGhIjKlMnOpQrStUvWxYz012345"


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    """An instant simulator on loopback."""
    with serve_in_thread(SimConfig()) as running:
        yield running


def png(path: Path) -> Path:
    """A valid 640x360 PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (640, 360), (10, 120, 200)).save(path)
    return path


def sheet_of(folder: Path, images: list[str]) -> Path:
    """A CSV with one row per image cell."""
    path = folder / "s.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["prompt", "image"])
        writer.writerows([f"shot {i}", image] for i, image in enumerate(images, start=1))
    return path


@pytest.mark.parametrize(
    ("link", "direct"),
    [
        (
            f"https://drive.google.com/file/d/{DRIVE_ID}/view?usp=sharing",
            f"https://drive.google.com/uc?export=download&id={DRIVE_ID}",
        ),
        (
            f"https://drive.google.com/open?id={DRIVE_ID}",
            f"https://drive.google.com/uc?export=download&id={DRIVE_ID}",
        ),
        (
            "https://www.dropbox.com/s/abc123/cat.png?dl=0",
            "https://www.dropbox.com/s/abc123/cat.png?dl=1",
        ),
        (
            "https://www.dropbox.com/scl/fi/xyz/cat.png?rlkey=k3y&dl=0",
            "https://www.dropbox.com/scl/fi/xyz/cat.png?rlkey=k3y&dl=1",
        ),
        (
            "https://onedrive.live.com/redir?resid=ABC!123&authkey=!XYZ",
            "https://onedrive.live.com/download?resid=ABC!123&authkey=!XYZ",
        ),
    ],
)
def test_share_links_are_sent_as_direct_links(
    tmp_path: Path,
    sim: RunningSimulator,
    monkeypatch: pytest.MonkeyPatch,
    link: str,
    direct: str,
) -> None:
    """What reaches the provider is the file's direct link, and the rewrite is said."""
    sheet = sheet_of(tmp_path, [link])
    bodies = sent_bodies(sim, monkeypatch)
    result = invoke(["run", str(sheet), *fast_options(sim.base_url, tmp_path / "r")[:-1]])
    assert result.exit_code == 0, result.output
    assert [b["image"] for b in bodies] == [direct]
    assert f"sent as its download link {direct}" in result.output


@pytest.mark.parametrize(
    "link",
    [
        "https://www.dropbox.com/s/abc123/cat.png?dl=1",
        "https://www.dropbox.com/s/abc123/cat.png?raw=1",
        f"https://drive.google.com/uc?export=download&id={DRIVE_ID}",
        "https://images.example.com/cat.png",
    ],
)
def test_direct_links_are_left_alone(link: str) -> None:
    """A link that is already direct (or no share link at all) is sent as written."""
    assert direct_link(link) is None


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        (
            "https://1drv.ms/i/s!AbCdEf",
            "row 1: image: https://1drv.ms/i/s!AbCdEf is a OneDrive short link, which cannot "
            "be turned into a direct link without opening it; open it, choose Download (or "
            "Embed), and put that link in the sheet",
        ),
        (
            "https://drive.google.com/drive/folders/abc",
            "row 1: image: https://drive.google.com/drive/folders/abc is a Google Drive page, "
            "not a file; share the image itself (File > Share > Copy link on the image) and "
            "put that link in the sheet",
        ),
        (
            "C:\\Users\\ana\\Pictures\\cat.png",
            "row 1: image: C:\\Users\\ana\\Pictures\\cat.png is a Windows path on another "
            "machine; put the image in the sheet's folder (or --image-root) and give its path "
            "from there, e.g. images/a.png",
        ),
    ],
)
def test_links_that_cannot_work_are_refused_with_the_fix(
    tmp_path: Path, cell: str, message: str
) -> None:
    """A OneDrive short link, a Drive folder, a drive-letter path: refused, saying what to do."""
    sheet = sheet_of(tmp_path, [cell])
    result = invoke(["validate", str(sheet)])
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == message


def test_windows_and_home_paths_are_read_as_meant(
    tmp_path: Path, sim: RunningSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`images\\a.png` is images/a.png; `~/b.png` is in the home folder, when that is inside."""
    folder = tmp_path / "project"
    data = png(folder / "images" / "a.png").read_bytes()
    png(folder / "b.png")
    monkeypatch.setenv("HOME", str(folder))
    sheet = sheet_of(folder, ["images\\a.png", "~/b.png"])
    bodies = sent_bodies(sim, monkeypatch)
    result = invoke(["run", str(sheet), *fast_options(sim.base_url, tmp_path / "r")])
    assert result.exit_code == 0, result.output
    expected = "data:image/png;base64," + base64.b64encode(data).decode()
    assert sorted(b["image"] for b in bodies)[0] == expected
    assert len(bodies) == 2


def test_home_outside_the_sheet_folder_is_still_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`~` does not widen what may be sent: a file in the home folder outside is refused."""
    png(tmp_path / "home" / "secret.png")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "sheet").mkdir()
    sheet = sheet_of(tmp_path / "sheet", ["~/secret.png"])
    result = invoke(["validate", str(sheet)])
    assert result.exit_code == 1
    assert "~/secret.png leads outside the sheet's folder" in result.output


def test_every_image_problem_names_the_file(tmp_path: Path) -> None:
    """A too-small local image: the message says which file."""
    Image.new("RGB", (100, 100)).save(tmp_path / "tiny.png")
    result = invoke(["validate", str(sheet_of(tmp_path, ["tiny.png"]))])
    assert result.output.startswith("row 1: image: tiny.png: 100x100 px; each side must be")


@pytest.mark.corpus
def test_vbench_prompts_with_bare_image_names_under_image_root(
    tmp_path: Path, testdata: Path
) -> None:
    """The VBench set: `prompt_en` and bare `image_name`s, found under the job's image_root."""
    entries: list[dict[str, Any]] = json.loads(
        (testdata / "prompts" / "vbench2_i2v_full_info.json").read_text(encoding="utf-8")
    )[:5]
    sheet = tmp_path / "sheets" / "vbench.csv"
    sheet.parent.mkdir()
    with sheet.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ["prompt_en", "image_name", "image_type"])
        writer.writeheader()
        writer.writerows(
            {k: e[k] for k in ("prompt_en", "image_name", "image_type")} for e in entries
        )
    for entry in entries:
        png(tmp_path / "images" / entry["image_name"])
    job = tmp_path / "job.yaml"
    job.write_text("sheet: sheets/vbench.csv\nimage_root: images\n", encoding="utf-8")
    spec = load_source(job)
    assert spec.image_root == tmp_path / "images"
    rows = check_rows(read_spec_sheet(spec), spec, image_root=spec.image_root)
    assert [r.status for r in rows] == ["pending"] * 5
    assert [r.request["prompt"] for r in rows] == [e["prompt_en"] for e in entries]
    assert [r.image_path for r in rows] == [
        (tmp_path / "images" / e["image_name"]).resolve() for e in entries
    ]
    assert [r.extra for r in rows] == [{"image_type": e["image_type"]} for e in entries]


_URL_TAIL = st.text(
    alphabet=string.ascii_letters + string.digits + ".-:/?#@[] %\u00e9\t", max_size=30
)


@settings(max_examples=2000, deadline=None)
@given(scheme=st.sampled_from(["http://", "https://", "HTTPS://"]), rest=_URL_TAIL)
def test_the_fast_url_path_only_passes_what_the_full_check_passes(scheme: str, rest: str) -> None:
    """A URL taken by the quick shape check is one the full check accepts too."""
    url = scheme + rest
    if _PLAIN_URL.match(url):
        assert url_problem(url) is None
