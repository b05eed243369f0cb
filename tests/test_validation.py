"""Validation: every field rule on both sides of its boundary, images, keys, duplicates, URLs."""

from __future__ import annotations

import base64
import csv
import io
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from batchwan.catalog.rules import shown
from batchwan.checks.urlcheck import check_urls
from batchwan.checks.validation import (
    build_body,
    canonical_json,
    check_rows,
    content_hash,
    describe,
)
from batchwan.errors import InputError
from batchwan.sheet.loader import SHEET_SUFFIXES, Sheet, read_sheet
from batchwan.values import CheckedRow, JobSpec, RowIssue, SheetRow, Status

URL = "https://cdn.example.com/a.jpg"


def png(path: Path, size: tuple[int, int] = (640, 360), mode: str = "RGB") -> Path:
    """Write a plain image; the format follows the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, (40, 80, 120, 255)[: len(mode)]).save(path)
    return path


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    """Write rows as CSV with the union of their keys as the header."""
    header: list[str] = []
    for row in rows:
        header += [k for k in row if k not in header]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, header)
        writer.writeheader()
        writer.writerows(rows)
    return path


def check(
    tmp_path: Path, rows: list[dict[str, str]], spec: dict[str, Any] | None = None, **kw: Any
) -> list[CheckedRow]:
    """Write rows to tmp_path/sheet.csv and check them."""
    path = write_csv(tmp_path / "sheet.csv", rows)
    return check_rows(read_sheet(path), JobSpec(sheet=path, **(spec or {})), **kw)


def one(tmp_path: Path, **cells: str) -> CheckedRow:
    """Check a single row that has a valid prompt and URL image unless overridden."""
    row = {"prompt": "a cat", "image": URL, **cells}
    return check(tmp_path, [row])[0]


def lines(row: CheckedRow) -> list[str]:
    """A row's problems as printed."""
    return [describe(i) for i in row.issues]


@pytest.mark.parametrize(
    ("column", "text", "value", "problem"),
    [
        ("prompt", "x" * 2000, "x" * 2000, None),
        (
            "prompt",
            "x" * 2001,
            None,
            "2001 characters; wan2.5-i2v-preview takes at most 2000 (shorten it)",
        ),
        ("negative_prompt", "n" * 500, "n" * 500, None),
        (
            "negative_prompt",
            "n" * 501,
            None,
            "501 characters; wan2.5-i2v-preview takes at most 500 (shorten it)",
        ),
        ("resolution", "720p", "720P", None),
        ("resolution", " 1080P ", "1080P", None),
        ("resolution", "480P", "480P", None),
        (
            "resolution",
            "720",
            None,
            "wan2.5-i2v-preview takes 480P, 720P or 1080P, got 720; did you mean 720P?",
        ),
        ("resolution", "4K", None, "wan2.5-i2v-preview takes 480P, 720P or 1080P, got 4K"),
        ("duration", "5", 5, None),
        ("duration", "5.0", 5, None),
        ("duration", "10", 10, None),
        ("duration", "7", None, "wan2.5-i2v-preview takes 5 or 10, got 7"),
        ("duration", "5.5", None, "wan2.5-i2v-preview takes 5 or 10, got 5.5"),
        ("duration", "five", None, "wan2.5-i2v-preview takes 5 or 10, got five"),
        ("seed", "0", 0, None),
        ("seed", "2147483647", 2147483647, None),
        ("seed", "-1", None, "must be a whole number from 0 to 2147483647, got -1"),
        ("seed", "2147483648", None, "must be a whole number from 0 to 2147483647, got 2147483648"),
        ("seed", "007", 7, None),
        ("seed", "12.0", 12, None),
        ("seed", "1e3", None, "must be a whole number from 0 to 2147483647, got 1e3"),
        ("seed", "١٢", None, "must be a whole number from 0 to 2147483647, got ١٢"),
        ("audio", "TRUE", True, None),
        ("audio", "no", False, None),
        ("prompt_extend", "1", True, None),
        ("safety_filter", "0", False, None),
        ("safety_filter", "Yes", True, None),
        ("audio", "maybe", None, "must be true or false (or yes/no, 1/0), got maybe"),
        ("audio_url", "https://x.org/a.mp3", "https://x.org/a.mp3", None),
        ("audio_url", "my-song.mp3", None, "must be an http(s) URL, got my-song.mp3"),
        ("audio_url", "ftp://x.org/a.mp3", None, "must be an http(s) URL, got ftp://x.org/a.mp3"),
        (
            "audio_url",
            "https:///a.mp3",
            None,
            "https:///a.mp3 has no host name; write it as https://host/path",
        ),
        (
            "audio_url",
            "https://x.org/my song.mp3",
            None,
            "https://x.org/my song.mp3 contains a space; write it as %20",
        ),
        ("audio_url", "http://[::1", None, "http://[::1 is not a well-formed URL"),
    ],
)
def test_field_rules(
    tmp_path: Path, column: str, text: str, value: object, problem: str | None
) -> None:
    """Each field is normalised to the API's type, or refused with how to fix it."""
    row = one(tmp_path, **{column: text})
    if problem is None:
        assert row.issues == ()
        assert row.status is Status.PENDING
        assert row.request[column] == value
        assert type(row.request[column]) is type(value)
    else:
        assert row.status is Status.INVALID
        assert lines(row) == [f"row 1: {column}: {problem}"]


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ("", "is empty; give an http(s) URL, a data: URI, or a path to a file beside the sheet"),
        ("http://", "http:// has no host name; write it as https://host/path"),
        (
            "ftp://x.org/a.png",
            "must be an http(s) URL, a data: URI or a path to a file beside the sheet, got ftp://x.org/a.png",
        ),
        (
            "file:///etc/passwd",
            "must be an http(s) URL, a data: URI or a path to a file beside the sheet, got file:///etc/passwd",
        ),
        ("HTTPS://X.ORG/A.PNG", None),
    ],
)
def test_image_text_forms(tmp_path: Path, image: str, message: str | None) -> None:
    """The image must be an http(s) URL, a data: URI or a local path."""
    row = one(tmp_path, image=image)
    assert lines(row) == ([] if message is None else [f"row 1: image: {message}"])


def test_every_problem_of_a_row_in_one_pass(tmp_path: Path) -> None:
    """A row with several bad cells reports all of them, in field order."""
    row = one(tmp_path, prompt="", duration="7", seed="-1", resolution="8K")
    assert lines(row) == [
        "row 1: prompt: is empty; write what the video should show",
        "row 1: resolution: wan2.5-i2v-preview takes 480P, 720P or 1080P, got 8K",
        "row 1: duration: wan2.5-i2v-preview takes 5 or 10, got 7",
        "row 1: seed: must be a whole number from 0 to 2147483647, got -1",
    ]


def test_request_holds_only_fields_set_and_extra_keeps_the_rest(tmp_path: Path) -> None:
    """Only set fields are sent; the user's own columns are carried unchanged, in order."""
    row = check(
        tmp_path,
        [{"owner": " ana ", "prompt": " a cat ", "image": URL, "seed": "", "campaign": "=1+1"}],
    )[0]
    assert row.request == {"prompt": "a cat", "image": URL}
    assert row.extra == {"owner": " ana ", "campaign": "=1+1"}
    assert list(row.extra) == ["owner", "campaign"]


def test_job_file_mapping_and_defaults_precedence(tmp_path: Path) -> None:
    """Mapped columns feed API fields; a cell beats the job default, which beats the sheet's."""
    path = tmp_path / "s.yaml"
    path.write_text(
        "defaults: {duration: 10, resolution: 480P, seed: 5}\n"
        "rows:\n"
        "  - {Text: a, Pic: https://x.org/a.png, Code: c1, resolution: 1080p}\n"
        "  - {Text: b, Pic: https://x.org/b.png, prompt: mine}\n",
        encoding="utf-8",
    )
    spec = JobSpec(
        sheet=path,
        columns={"prompt": "Text", "image": "Pic", "id": "Code"},
        defaults={"resolution": "720P", "audio": False},
    )
    rows = check_rows(read_sheet(path), spec)
    assert rows[0].request == {
        "prompt": "a",
        "image": "https://x.org/a.png",
        "resolution": "1080P",
        "duration": 10,
        "seed": 5,
        "audio": False,
    }
    assert rows[0].key == rows[0].row_id == "c1"
    assert rows[1].request["resolution"] == "720P"
    assert rows[1].extra == {"prompt": "mine"}


@pytest.mark.parametrize("header", ["Prompt", "Seed", "DURATION", "Id"])
def test_headers_in_another_case_are_read_as_the_field(tmp_path: Path, header: str) -> None:
    """A header that is an API field in another case is read as that field, never left unsent."""
    path = write_csv(tmp_path / "s.csv", [{"prompt": "a", "image": URL, header: "5"}])
    if header.strip().lower() == "prompt":
        path = write_csv(tmp_path / "s.csv", [{header: "a", "image": URL}])
    row = check_rows(read_sheet(path), JobSpec(sheet=path))[0]
    field = header.lower()
    if field == "id":
        assert row.row_id == "5"
    else:
        assert row.request[field] == ("a" if field == "prompt" else 5)
    assert header not in row.extra


def test_a_mapped_column_may_look_like_a_field(tmp_path: Path) -> None:
    """With prompt mapped to `Prompt` in the job file, the header is read and sent."""
    path = write_csv(tmp_path / "s.csv", [{"Prompt": "a", "image": URL, "prompt": "mine"}])
    row = check_rows(read_sheet(path), JobSpec(sheet=path, columns={"prompt": "Prompt"}))[0]
    assert row.request == {"prompt": "a", "image": URL}
    assert row.extra == {"prompt": "mine"}


def test_mapping_to_a_missing_column_is_an_input_error(tmp_path: Path) -> None:
    """A job file naming a column the sheet lacks makes the sheet unusable."""
    path = write_csv(tmp_path / "s.csv", [{"prompt": "a", "image": URL}])
    spec = JobSpec(sheet=path, columns={"prompt": "Text"})
    with pytest.raises(InputError, match="maps prompt to column 'Text', which the sheet"):
        check_rows(read_sheet(path), spec)


def test_keys_and_duplicates(tmp_path: Path) -> None:
    """Same content without an id is a duplicate of the first; an id makes it a new row."""
    base = {"prompt": "a", "image": URL}
    rows = check(
        tmp_path,
        [{**base, "id": ""}, {**base, "id": ""}, {**base, "id": "again"}, {**base, "id": ""}],
    )
    assert [r.status for r in rows] == [
        Status.PENDING,
        Status.DUPLICATE,
        Status.PENDING,
        Status.DUPLICATE,
    ]
    assert rows[0].key == rows[0].content_hash[:16]
    assert len(rows[0].content_hash) == 64
    assert rows[2].key == "again"
    assert rows[2].content_hash == rows[0].content_hash
    assert lines(rows[1]) == [
        "row 2: duplicate of row 1 (same prompt, image and settings); "
        "give it an id to send it again"
    ]


def test_same_id_twice_makes_the_later_row_invalid(tmp_path: Path) -> None:
    """Ids must be unique: the later row with a used id is invalid, on column id."""
    rows = check(
        tmp_path,
        [{"id": "a", "prompt": "x", "image": URL}, {"id": "a", "prompt": "y", "image": URL}],
    )
    assert rows[0].status is Status.PENDING
    assert lines(rows[1]) == ["row 2: id: 'a' is also the id of row 1; give each row its own id"]


def test_content_hash_is_canonical(tmp_path: Path) -> None:
    """Equal requests written differently (720p vs 720P, 5.0 vs 5) share one key."""
    rows = check(
        tmp_path,
        [
            {"prompt": "a", "image": URL, "resolution": "720p", "duration": "5.0"},
            {"prompt": "a", "image": URL, "resolution": "720P", "duration": "5"},
        ],
    )
    assert rows[0].content_hash == rows[1].content_hash
    assert rows[1].status is Status.DUPLICATE


def test_local_image_bytes_are_hashed_in(tmp_path: Path) -> None:
    """Changing the image file changes the content hash; the path stays in request for display."""
    image = png(tmp_path / "img" / "a.png")
    first = check(tmp_path, [{"prompt": "a", "image": "img/a.png"}])[0]
    png(image, (700, 400))
    second = check(tmp_path, [{"prompt": "a", "image": "img/a.png"}])[0]
    assert first.status is Status.PENDING
    assert first.request["image"] == "img/a.png"
    assert first.image_path == image.resolve()
    assert first.content_hash != second.content_hash


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ("../secret.png", "../secret.png leads outside the sheet's folder {root}"),
        ("img/../../secret.png", "img/../../secret.png leads outside the sheet's folder {root}"),
        ("{abs}", "{abs} leads outside the sheet's folder {root}"),
        ("link.png", "link.png leads outside the sheet's folder {root}"),
    ],
)
def test_paths_leading_outside_the_folder_are_refused(
    tmp_path: Path, image: str, message: str
) -> None:
    """`..`, absolute paths and symlinks that leave the sheet's folder are refused."""
    root = tmp_path / "sheets"
    root.mkdir()
    secret = png(tmp_path / "secret.png")
    (root / "link.png").symlink_to(secret)
    image = image.format(abs=secret)
    path = write_csv(root / "s.csv", [{"prompt": "a", "image": image}])
    row = check_rows(read_sheet(path), JobSpec(sheet=path))[0]
    expected = message.format(root=root.resolve(), abs=shown(str(secret)))
    assert lines(row) == [
        f"row 1: image: {expected}; images must be inside it "
        "(move the image there, or pass --image-root)"
    ]
    assert row.image_path is None


def test_image_root_widens_the_allowed_folder(tmp_path: Path) -> None:
    """With --image-root, a path outside the sheet's folder but inside the root is fine."""
    root = tmp_path / "sheets"
    root.mkdir()
    png(tmp_path / "shared" / "a.png")
    path = write_csv(root / "s.csv", [{"prompt": "a", "image": "../shared/a.png"}])
    row = check_rows(read_sheet(path), JobSpec(sheet=path), image_root=tmp_path)[0]
    assert row.status is Status.PENDING
    narrow = check_rows(read_sheet(path), JobSpec(sheet=path), image_root=root)[0]
    assert "leads outside --image-root" in lines(narrow)[0]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nope.png", "no file nope.png in {base} (check the name)"),
        ("a\0b.png", "a\0b.png is not a usable file path (embedded null byte)"),
    ],
)
def test_missing_local_images(tmp_path: Path, name: str, message: str) -> None:
    """A local image that is not there, or is not a path at all, is refused cleanly."""
    path = tmp_path / "s.jsonl"
    path.write_text('{"prompt": "a", "image": "' + name.replace("\0", "\\u0000") + '"}\n')
    row = check_rows(read_sheet(path), JobSpec(sheet=path))[0]
    assert lines(row) == [f"row 1: image: {message.format(base=tmp_path.resolve())}"]


def data_uri(image: Image.Image, fmt: str, declared: str | None = None) -> str:
    """An image as a data: URI."""
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return f"data:image/{declared or fmt.lower()};base64,{encoded}"


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        (data_uri(Image.new("RGB", (640, 360)), "PNG"), None),
        (data_uri(Image.new("RGB", (640, 360)), "JPEG", "jpg"), None),
        (
            data_uri(Image.new("RGB", (300, 360)), "PNG"),
            "300x360 px; each side must be 360-2000 px (resize it, or run with --fix-images)",
        ),
        (
            data_uri(Image.new("RGB", (640, 360)), "JPEG", "png"),
            "the data: URI says image/png but holds JPEG; write data:image/jpeg;base64,...",
        ),
        ("data:image/png,rawdata", "a data: URI must look like data:image/png;base64,<data>"),
        ("data:text/plain;base64,aGk=", "a data: URI must hold an image, got text/plain"),
        (
            "data:image/png;base64,@@@",
            "the base64 data of the data: URI is damaged (Only base64 data is allowed)",
        ),
    ],
)
def test_data_uris_get_the_image_checks(tmp_path: Path, uri: str, message: str | None) -> None:
    """A data: URI is decoded and checked like a file; its text is sent as it is."""
    row = one(tmp_path, image=uri)
    assert lines(row) == ([] if message is None else [f"row 1: image: {message}"])
    assert row.image_path is None
    if message is None:
        assert build_body(row)["image"] == uri


def test_a_huge_data_uri_cell_loads_and_is_refused_by_size(tmp_path: Path) -> None:
    """A data: URI over 10 MB in a CSV cell is read (no field limit) and refused for its size."""
    payload = base64.b64encode(b"\x89PNG" + os.urandom(10_000_000)).decode()
    row = one(tmp_path, image=f"data:image/png;base64,{payload}")
    assert lines(row)[0].startswith("row 1: image: 10.0 MB (10000004 bytes); must be at most 10 MB")


def test_build_body_sends_a_local_image_as_base64(tmp_path: Path) -> None:
    """The body has the image's bytes as a data: URI of its real format; the row is unchanged."""
    image = png(tmp_path / "a.jpg")  # saved as JPEG: Pillow follows the suffix
    row = check(tmp_path, [{"prompt": "a", "image": "a.jpg", "seed": "3"}])[0]
    body = build_body(row)
    assert body == {
        "prompt": "a",
        "image": "data:image/jpeg;base64," + base64.b64encode(image.read_bytes()).decode(),
        "seed": 3,
        "resolution": "720P",
        "duration": 5,
    }
    assert row.request["image"] == "a.jpg"


def test_build_body_of_a_vanished_image_is_an_input_error(tmp_path: Path) -> None:
    """An image deleted between validation and submit is a clear error."""
    image = png(tmp_path / "a.png")
    row = check(tmp_path, [{"prompt": "a", "image": "a.png"}])[0]
    image.unlink()
    with pytest.raises(InputError, match=r"row 1: image: .* can no longer be read"):
        build_body(row)


def test_read_errors_become_invalid_rows(tmp_path: Path) -> None:
    """A line that could not be parsed is an invalid row saying which line."""
    sheet = Sheet(tmp_path / "s.jsonl", ("prompt",), [SheetRow(1, {}, "line 1 is not valid JSON")])
    row = check_rows(sheet, JobSpec(sheet=sheet.path))[0]
    assert row.status is Status.INVALID
    assert lines(row) == ["row 1: line 1 is not valid JSON; fix that line of the sheet"]


def test_describe_without_a_column() -> None:
    """A problem without a column prints as `row N: message`."""
    assert describe(RowIssue(3, "", "x")) == "row 3: x"
    assert describe(RowIssue(3, "seed", "x")) == "row 3: seed: x"


def test_fixable_image_problems_are_flagged(tmp_path: Path) -> None:
    """Without fix_dir, a too-small image is a fixable problem saying --fix-images."""
    png(tmp_path / "small.png", (200, 150))
    row = check(tmp_path, [{"prompt": "a", "image": "small.png"}])[0]
    assert row.issues[0].fixable
    assert row.issues[0].message.endswith("(resize it, or run with --fix-images)")


def test_fix_dir_mends_fixable_images(tmp_path: Path) -> None:
    """With fix_dir, fixable images are converted, the row is valid and notes what was done."""
    pytest.importorskip("batchwan.checks.fixer")
    png(tmp_path / "small.png", (200, 150))
    png(tmp_path / "clear.png", (640, 360), "RGBA")
    png(tmp_path / "tiny.png", (10, 2000))
    fixes = tmp_path / "fixed"
    rows = check(
        tmp_path,
        [
            {"prompt": "a", "image": "small.png"},
            {"prompt": "b", "image": "tiny.png"},
            {"prompt": "c", "image": "clear.png"},
        ],
        fix_dir=fixes,
    )
    assert rows[0].status is Status.PENDING
    assert rows[0].image_path is not None
    assert rows[0].image_path.parent == fixes
    assert rows[0].notes
    assert rows[0].notes[0].startswith("image: ")
    assert rows[0].request["image"] == "small.png"
    assert rows[1].status is Status.INVALID  # 10x2000 cannot be scaled into range
    assert rows[2].status is Status.PENDING  # fully opaque alpha needs no fixing
    assert rows[2].notes == ()


def test_fix_dir_mends_a_data_uri(tmp_path: Path) -> None:
    """A fixable data: URI is written out, fixed, and sent from the fixed file."""
    pytest.importorskip("batchwan.checks.fixer")
    uri = data_uri(Image.new("RGB", (200, 150)), "PNG")
    row = check(tmp_path, [{"prompt": "a", "image": uri}], fix_dir=tmp_path / "fixed")[0]
    assert row.status is Status.PENDING
    assert row.image_path is not None
    assert row.request["image"] == uri
    assert build_body(row)["image"].startswith("data:image/jpeg;base64,")


_text = st.text(max_size=30)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cells=st.dictionaries(
        st.sampled_from(
            [
                "prompt",
                "image",
                "duration",
                "seed",
                "audio",
                "resolution",
                "audio_url",
                "id",
                "notes",
            ]
        ),
        _text,
    )
)
def test_any_cell_text_gives_a_checked_row(tmp_path: Path, cells: dict[str, str]) -> None:
    """Whatever text is in any cell, checking gives a row with a status, never an exception."""
    cells = {"prompt": "", "image": "", **cells}  # without these columns the sheet is refused
    sheet = Sheet(tmp_path / "s.csv", tuple(cells), [SheetRow(1, cells)])
    row = check_rows(sheet, JobSpec(sheet=sheet.path))[0]
    assert row.status in (Status.PENDING, Status.INVALID)
    assert (row.status is Status.PENDING) == (row.issues == ())
    assert len(row.key) > 0


# --- --check-urls against a server on 127.0.0.1 ---


def _wav(seconds: float) -> bytes:
    import wave

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(8000)
        out.writeframes(b"\x80" * int(seconds * 8000))
    return buffer.getvalue()


def _image_bytes(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size).save(buffer, "PNG")
    return buffer.getvalue()


FILES: dict[str, tuple[bytes, str]] = {
    "/good.png": (_image_bytes((640, 360)), "image/png"),
    "/small.png": (_image_bytes((100, 100)), "image/png"),
    "/page.html": (b"<html></html>", "text/html"),
    "/good.wav": (_wav(5), "audio/wav"),
    "/short.wav": (_wav(1), "audio/wav"),
}


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, dict[str, int]]]:
    """A file server on 127.0.0.1 that counts requests per path."""
    hits: dict[str, int] = {}

    async def serve(request: web.Request) -> web.StreamResponse:
        """The file at the path, a long stream for /huge.png, or 404."""
        hits[request.path] = hits.get(request.path, 0) + 1
        if request.path == "/huge.png":
            response = web.StreamResponse(headers={"Content-Type": "image/png"})
            await response.prepare(request)
            for _ in range(200):  # an endless-looking body: more than the cap, never all read
                await response.write(b"\0" * 65536)
            return response
        if request.path not in FILES:
            return web.Response(status=404)
        body, kind = FILES[request.path]
        return web.Response(body=body, content_type=kind)

    app = web.Application()
    app.router.add_get("/{tail:.*}", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # a started site has a server
    try:
        yield f"http://127.0.0.1:{port}", hits
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("image", "audio", "messages"),
    [
        ("/good.png", "/good.wav", []),
        ("/small.png", "", ["image: 100x100 px; each side must be 360-2000 px (resize it)"]),
        (
            "/page.html",
            "",
            ["image: {u}/page.html is text/html, not an image; link the file itself"],
        ),
        (
            "/gone.png",
            "",
            ["image: {u}/gone.png answered HTTP 404; the link must be public and direct"],
        ),
        ("/huge.png", "", ["image: {u}/huge.png is over 10.0 MB; must be at most 10.0 MB"]),
        (
            "/good.png",
            "/short.wav",
            ["audio_url: 1.0 s long; must be 3-30 s (trim or lengthen it)"],
        ),
        (
            "/good.png",
            "/good.png",
            ["audio_url: {u}/good.png is image/png, not audio; link the file itself"],
        ),
    ],
)
async def test_check_urls(
    tmp_path: Path,
    server: tuple[str, dict[str, int]],
    image: str,
    audio: str,
    messages: list[str],
) -> None:
    """Each remote file is fetched and checked; problems are added and the row becomes invalid."""
    base, _hits = server
    cells = {"prompt": "a", "image": base + image}
    if audio:
        cells["audio_url"] = base + audio
    rows = await check_urls(check(tmp_path, [cells]), allow_private=True)
    got = [describe(i).removeprefix("row 1: ") for i in rows[0].issues]
    expected = [m.format(u=base) for m in messages]
    assert got == expected
    assert rows[0].status is (Status.PENDING if not messages else Status.INVALID)


async def test_check_urls_checks_a_last_frame_like_the_first(
    tmp_path: Path, server: tuple[str, dict[str, int]]
) -> None:
    """--check-urls fetches a remote last frame and applies the image rules to it."""
    base, _hits = server
    cells = {"model": "wan2.1-kf2v-plus", "prompt": "a", "image": f"{base}/good.png"}
    rows = await check_urls(
        check(tmp_path, [{**cells, "last_frame": f"{base}/small.png"}]), allow_private=True
    )
    assert [describe(i) for i in rows[0].issues] == [
        "row 1: last_frame: 100x100 px; each side must be 360-2000 px (resize it)"
    ]


async def test_check_urls_fetches_each_url_once(
    tmp_path: Path, server: tuple[str, dict[str, int]]
) -> None:
    """Many rows naming one URL cause one fetch; rows without URLs are untouched."""
    base, hits = server
    rows = check(
        tmp_path,
        [{"prompt": str(n), "image": f"{base}/good.png"} for n in range(20)],
    )
    checked = await check_urls(rows, concurrency=3, allow_private=True)
    assert hits == {"/good.png": 1}
    assert checked == rows


async def test_check_urls_reports_unreachable_hosts(tmp_path: Path) -> None:
    """A refused connection is a row problem, not an exception."""
    rows = check(tmp_path, [{"prompt": "a", "image": "http://127.0.0.1:9/x.png"}])
    checked = await check_urls(rows, timeout=5, allow_private=True)
    assert checked[0].status is Status.INVALID
    assert (
        checked[0].issues[0].message.startswith("http://127.0.0.1:9/x.png could not be fetched (")
    )


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=400), suffix=st.sampled_from(SHEET_SUFFIXES))
def test_any_bytes_as_a_sheet_give_rows_or_one_input_error(
    tmp_path: Path, data: bytes, suffix: str
) -> None:
    """Arbitrary bytes as any sheet format: row problems or a clean InputError, nothing else."""
    path = tmp_path / f"h{suffix}"
    path.write_bytes(data)
    try:
        sheet = read_sheet(path)
        rows = check_rows(sheet, JobSpec(sheet=path))
    except InputError as exc:
        message = str(exc)
    else:
        message = f"{path}: checked"
        assert all(r.status in (Status.PENDING, Status.INVALID, Status.DUPLICATE) for r in rows)
    assert message.startswith(f"{path}: ")


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lines=st.lists(
        st.one_of(
            st.text(max_size=40),
            st.dictionaries(
                st.sampled_from(["prompt", "image", "seed", "x"]), st.text(max_size=20)
            ).map(lambda d: __import__("json").dumps(d)),
        ),
        max_size=6,
    )
)
def test_any_jsonl_lines_give_rows(tmp_path: Path, lines: list[str]) -> None:
    """Any mix of JSON objects and junk lines gives one checked row per non-blank line."""
    path = tmp_path / "h.jsonl"
    lines = ['{"prompt": "", "image": ""}', *lines]  # without these keys the sheet is refused
    text = "\n".join(line.replace("\n", " ").replace("\r", " ") for line in lines)
    path.write_text(text, encoding="utf-8")
    rows = check_rows(read_sheet(path), JobSpec(sheet=path))
    assert len(rows) == len([line for line in text.split("\n") if line.strip()])


@pytest.mark.parametrize(
    ("cells", "sent"),
    [
        ({}, ("720P", 5)),
        ({"resolution": "1080p"}, ("1080P", 5)),
        ({"duration": "10.0"}, ("720P", 10)),
    ],
)
def test_build_body_always_states_the_priced_resolution_and_duration(
    tmp_path: Path, cells: dict[str, str], sent: tuple[str, int]
) -> None:
    """What is sent is what was priced: unset resolution/duration go out as 720P and 5 s."""
    row = check(tmp_path, [{"prompt": "a", "image": "https://x.example.com/a.jpg", **cells}])[0]
    body = build_body(row)
    assert (body["resolution"], body["duration"]) == sent == (row.resolution, row.duration)


def test_a_content_hash_is_the_one_earlier_versions_gave() -> None:
    """The key of a row without an id must not change between versions: run folders hold it."""
    request = {
        "prompt": 'Café at dawn \u2014 "quoted"',
        "image": "https://x.org/a.jpg",
        "duration": 5,
        "seed": 7,
        "prompt_extend": False,
    }
    assert content_hash(request, None, "ab" * 32, "wan2.6-i2v", "take 2") == (
        "9aab5982feec1d4ffa57e24fed13f79054e3e3dca7e677332befa656e74d1d86"
    )


_JSON_VALUES = st.one_of(
    st.text(), st.integers(), st.booleans(), st.none(), st.floats(allow_nan=False)
)


@given(st.dictionaries(st.text(), _JSON_VALUES, max_size=8))
def test_the_canonical_json_is_json_dumps_sorted_and_compact(request: dict[str, Any]) -> None:
    """The reused encoder writes exactly what json.dumps writes with the same options."""
    assert canonical_json(request) == json.dumps(request, sort_keys=True, separators=(",", ":"))
