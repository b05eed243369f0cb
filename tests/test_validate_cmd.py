"""`batchwan validate`: exact output, --report, exit codes 0/1/2, --fix-images, --check-urls."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from batchwan.cli.validate_cmd import validate

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"

MISTAKES = [
    "row 1: prompt: is empty; write what the video should show",
    "row 2: duration: wan2.5-i2v-preview takes 5 or 10, got 7",
    "row 4: image: images/thumbnail.jpg: 240x135 px; each side must be 360-2000 px "
    "(resize it, or run with --fix-images)",
    "row 5: image: images/logo-transparent.png: has transparent pixels, which the API refuses "
    "(flatten it onto a background, or run with --fix-images)",
    f"row 6: image: ../secret.png leads outside the sheet's folder {SAMPLES}; "
    "images must be inside it (move the image there, or pass --image-root)",
    "row 7: seed: must be a whole number from 0 to 2147483647, got -1",
    "row 9: duplicate of row 8 (same prompt, image and settings); give it an id to send it again",
    "row 10: audio_url: must be an http(s) URL, got my-song.mp3",
    "11 rows: 3 valid, 7 invalid, 1 duplicate",
]


def invoke(*args: str) -> tuple[int, str, str]:
    """Run `batchwan validate` in-process; exit code, stdout, stderr."""
    result = CliRunner().invoke(validate, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    "source", [SAMPLES / "demo.csv", REPO / "jobs" / "demo.yaml", REPO / "jobs" / "example.yaml"]
)
def test_demo_sheet_is_valid(source: Path) -> None:
    """The demo sheet, directly or through a job file, is all valid: exit 0."""
    code, out, err = invoke(str(source))
    assert (code, out, err) == (0, "12 rows: 12 valid, 0 invalid, 0 duplicates\n", "")


def test_mistakes_sheet_reports_every_problem() -> None:
    """Every typical mistake is reported in one pass, then the summary: exit 1."""
    code, out, err = invoke(str(SAMPLES / "mistakes.csv"))
    assert code == 1
    assert out.splitlines() == MISTAKES
    assert err == ""


def test_report_file(tmp_path: Path) -> None:
    """--report writes row,id,column,message for every problem; derived ids for rows without one."""
    report = tmp_path / "problems.csv"
    code, _out, _err = invoke(str(SAMPLES / "mistakes.csv"), "--report", str(report))
    assert code == 1
    with report.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["row", "id", "column", "message"]
    assert [r[:3] for r in rows[1:]] == [
        ["1", "m-01", "prompt"],
        ["2", "m-02", "duration"],
        ["4", "m-04", "image"],
        ["5", "m-05", "image"],
        ["6", "m-06", "image"],
        ["7", "m-07", "seed"],
        ["9", rows[7][1], ""],
        ["10", "m-08", "audio_url"],
    ]
    assert len(rows[7][1]) == 16
    assert rows[2][3] == "wan2.5-i2v-preview takes 5 or 10, got 7"


def test_report_cells_cannot_run_as_formulas(tmp_path: Path) -> None:
    """A message quoting a formula-like cell is written so spreadsheets show it as text."""
    sheet = tmp_path / "s.csv"
    sheet.write_text("prompt,image,duration\n=1+1,https://x.org/a.png,=2+3\n", encoding="utf-8")
    report = tmp_path / "r.csv"
    assert invoke(str(sheet), "--report", str(report))[0] == 1
    text = report.read_text(encoding="utf-8")
    assert "row,id,column,message" in text
    assert "takes 5 or 10, got =2+3" in text  # the message itself starts with the model


@pytest.mark.parametrize(
    ("args", "stderr"),
    [
        (["nope.csv"], "Error: nope.csv: no such file\n"),
        (["nope.yaml"], "Error: nope.yaml: no such file\n"),
        (["{tmp}/sheet.txt"], "Error: {tmp}/sheet.txt: cannot read a .txt file as a sheet; "),
        (["{tmp}/bad.yaml"], "Error: {tmp}/bad.yaml: unknown key 'shet'; "),
        (["{tmp}/mapped.yaml"], "Error: {tmp}/s.csv: the job file maps prompt to column 'Text'"),
        (["{tmp}/s.csv", "--report", "{tmp}/no/r.csv"], "Error: cannot write {tmp}/no/r.csv: "),
    ],
)
def test_unusable_source_exits_2(tmp_path: Path, args: list[str], stderr: str) -> None:
    """An unreadable source, bad job file or unwritable report exits 2 with one clear line."""
    (tmp_path / "sheet.txt").write_text("prompt\n", encoding="utf-8")
    (tmp_path / "bad.yaml").write_text("sheet: s.csv\nshet: 1\n", encoding="utf-8")
    (tmp_path / "s.csv").write_text("prompt,image\na,https://x.org/a.png\n", encoding="utf-8")
    (tmp_path / "mapped.yaml").write_text(
        "sheet: s.csv\ncolumns: {prompt: Text}\n", encoding="utf-8"
    )
    code, out, err = invoke(*[a.format(tmp=tmp_path) for a in args])
    assert code == 2
    assert err.startswith(stderr.format(tmp=tmp_path))
    assert err.count("\n") == 1
    assert "Traceback" not in out + err


@pytest.mark.parametrize(
    "args",
    [["--image-root", "/no/such/dir", "x.csv"], ["--bogus", "x.csv"], []],
)
def test_bad_options_exit_2(args: list[str]) -> None:
    """Usage errors exit 2."""
    assert invoke(*args)[0] == 2


def test_empty_sheet_exits_1(tmp_path: Path) -> None:
    """A header with no rows is not a success under cron: exit 1, saying so."""
    sheet = tmp_path / "s.csv"
    sheet.write_text("prompt,image\n", encoding="utf-8")
    assert invoke(str(sheet)) == (
        1,
        "0 rows: 0 valid, 0 invalid, 0 duplicates\n",
        f"Error: {sheet}: the sheet has no data rows\n",
    )


def test_help_has_an_example() -> None:
    """--help is the command docstring, with an example."""
    code, out, _err = invoke("--help")
    assert code == 0
    assert "batchwan validate samples/mistakes.csv --report problems.csv" in out
    assert "--fix-images" in out


def test_fix_images_says_what_would_be_done(tmp_path: Path) -> None:
    """--fix-images reports each mend and counts mended rows valid; no file is left behind."""
    pytest.importorskip("batchwan.checks.fixer")
    before = sorted(p.name for p in SAMPLES.rglob("*"))
    code, out, _err = invoke(str(SAMPLES / "mistakes.csv"), "--fix-images")
    lines = out.splitlines()
    assert code == 1
    assert lines[2].startswith("row 4: would fix image: resized 240x135 -> ")
    assert lines[3].startswith("row 5: would fix image: ")
    assert "transparen" in lines[3]
    assert lines[-1] == "11 rows: 5 valid, 5 invalid, 1 duplicate"
    assert sorted(p.name for p in SAMPLES.rglob("*")) == before


class _Files(BaseHTTPRequestHandler):
    """Serves one good image and 404 for anything else."""

    def do_GET(self) -> None:
        """Answer one GET."""
        if self.path == "/good.png":
            buffer = io.BytesIO()
            Image.new("RGB", (640, 360)).save(buffer, "PNG")
            body = buffer.getvalue()
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
        else:
            body = b"missing"
            self.send_response(404)
            self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""


@pytest.fixture
def file_server() -> Iterator[str]:
    """A file server on 127.0.0.1 in a thread, for the CLI's own event loop to reach."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_check_urls(tmp_path: Path, file_server: str) -> None:
    """--check-urls fetches each URL: a good image passes, a missing one is a row problem."""
    sheet = tmp_path / "s.csv"
    sheet.write_text(
        f"prompt,image\na,{file_server}/good.png\nb,{file_server}/gone.png\n", encoding="utf-8"
    )
    assert invoke(str(sheet))[0] == 0  # without the flag nothing is fetched
    code, out, _err = invoke(str(sheet), "--check-urls", "--allow-private-urls")
    assert code == 1
    assert out.splitlines() == [
        f"row 2: image: {file_server}/gone.png answered HTTP 404; "
        "the link must be public and direct",
        "2 rows: 1 valid, 1 invalid, 0 duplicates",
    ]
