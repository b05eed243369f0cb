"""Headers as people write them: read as the field, or the sheet refused naming the fix."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import openpyxl
import pytest

from batchwan.checks.validation import check_rows, layout
from batchwan.errors import InputError
from batchwan.sheet.headers import FIELDS, match_headers, normal_form, read_header
from batchwan.sheet.jobfile import load_source
from batchwan.sheet.loader import read_sheet
from batchwan.values import JobSpec, Status

URL = "https://cdn.example.com/a.jpg"
FORMATS = ("csv", "tsv", "xlsx", "yaml", "jsonl")


def write_sheet(tmp_path: Path, fmt: str, rows: list[dict[str, str]]) -> Path:
    """Write rows (all with the same keys) in one sheet format."""
    path = tmp_path / f"s.{fmt}"
    header = list(rows[0])
    if fmt in ("csv", "tsv"):
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, delimiter="," if fmt == "csv" else "\t")
            writer.writerow(header)
            writer.writerows([row[h] for h in header] for row in rows)
    elif fmt == "xlsx":
        book = openpyxl.Workbook()
        sheet = book.active
        assert sheet is not None
        sheet.append(header)
        for row in rows:
            sheet.append([row[h] for h in header])
        book.save(path)
    elif fmt == "yaml":
        path.write_text(json.dumps(rows), encoding="utf-8")  # JSON is YAML
    else:
        path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def checked(path: Path, spec: JobSpec | None = None):  # type: ignore[no-untyped-def]
    """The checked rows of a sheet."""
    return check_rows(read_sheet(path), spec or JobSpec(sheet=path))


#: For every field, a header that people write for it, and what the cell is sent as.
READ_AS = [
    ("Prompt", "prompt", "a cat", "a cat"),
    ("Image URL", "image", URL, URL),
    ("first frame", "image", URL, URL),
    ("img", "image", URL, URL),
    ("negative prompt", "negative_prompt", "blur", "blur"),
    ("neg_prompt", "negative_prompt", "blur", "blur"),
    ("Negative-Prompt", "negative_prompt", "blur", "blur"),
    ("\u00a0Duration (s) ", "duration", "10", 10),
    ("seconds", "duration", "10", 10),
    ("Resolution", "resolution", "1080p", "1080P"),
    ("SEED", "seed", "7", 7),
    ("Prompt Extend", "prompt_extend", "no", False),
    ("safety filter", "safety_filter", "yes", True),
    ("Audio URL", "audio_url", "https://cdn.example.com/a.mp3", "https://cdn.example.com/a.mp3"),
    ("Audio", "audio", "true", True),
]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("header", "field", "cell", "sent"), READ_AS)
def test_headers_people_write_are_read_as_the_field(
    tmp_path: Path, fmt: str, header: str, field: str, cell: str, sent: object
) -> None:
    """Case, spaces, hyphens, units in seconds and common names all reach the request."""
    base = {"prompt": "p", "image": URL}
    base.pop(field, None)
    rows = checked(write_sheet(tmp_path, fmt, [{**base, header: cell}]))
    assert rows[0].request[field] == sent
    assert rows[0].extra == {}


#: For every field, a header that looks like it but is not one of its names.
LOOKS_LIKE = [
    ("Promt", "prompt"),
    ("prompt2", "prompt"),
    ("imgae", "image"),
    ("image_2", "image"),
    ("negative_promt", "negative_prompt"),
    ("audoi", "audio"),
    ("audio_ulr", "audio_url"),
    ("res", "resolution"),
    ("resolution_p", "resolution"),
    ("Resolution (px)", "resolution"),
    ("Duration (ms)", "duration"),
    ("length", "duration"),
    ("duraton", "duration"),
    ("prompt_extnd", "prompt_extend"),
    ("seeds", "seed"),
    ("safety_filer", "safety_filter"),
    ("modle", "model"),
    ("last_frme", "last_frame"),
    ("szie", "size"),
    ("shot_tpye", "shot_type"),
    ("templete", "template"),
    ("id2", "id"),
    ("takes", "take"),
]


def test_every_field_has_a_near_miss_case() -> None:
    """The table below covers every field a sheet can feed."""
    assert {field for _, field in LOOKS_LIKE} == set(FIELDS)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("header", "field"), LOOKS_LIKE)
def test_near_miss_headers_are_refused_naming_the_fix(
    tmp_path: Path, fmt: str, header: str, field: str
) -> None:
    """A misspelt or unit-suffixed header is never silently carried as the user's own column."""
    path = write_sheet(tmp_path, fmt, [{"prompt": "p", "image": URL, header: "5"}])
    with pytest.raises(InputError) as info:
        checked(path)
    message = str(info.value)
    assert message.startswith(f"{path}: column {header!r} ")
    assert message.endswith(
        f'rename it {field!r}, or in a job file write `columns: {{{field}: "{header}"}}`'
    )


#: The fields that take the cell "5" as a valid value, and that the run sends today.
_MAPPABLE_NEAR = [c for c in LOOKS_LIKE if c[1] in ("prompt", "negative_prompt", "seed", "id")]


@pytest.mark.parametrize(("header", "field"), _MAPPABLE_NEAR)
def test_the_columns_line_of_the_message_fixes_it(tmp_path: Path, header: str, field: str) -> None:
    """The `columns:` line the message proposes makes the sheet readable, the column sent."""
    cells = {"prompt": "p", "image": URL, header: "5"}
    if field == "prompt":
        del cells["prompt"]
    sheet = write_sheet(tmp_path, "csv", [cells])
    job = tmp_path / "job.yaml"
    job.write_text(f'sheet: s.csv\ncolumns: {{{field}: "{header}"}}\n', encoding="utf-8")
    spec = load_source(job)
    assert spec.sheet == sheet
    row = checked(sheet, spec)[0]
    assert header not in row.extra
    if field == "id":
        assert row.row_id == "5"
    else:
        assert row.request[field] == (5 if field == "seed" else "5")


def test_all_header_problems_in_one_message(tmp_path: Path) -> None:
    """Every header problem is listed at once, each on its own line."""
    path = write_sheet(tmp_path, "csv", [{"promt": "p", "img_2": URL, "Duration (ms)": "5"}])
    with pytest.raises(InputError) as info:
        checked(path)
    lines = str(info.value).splitlines()
    assert lines[0] == f"{path}: 3 problems with the header:"
    assert [line.split(";")[0] for line in lines[1:]] == [
        "  column 'promt' looks like prompt misspelt",
        "  column 'img_2' looks like a second image column, and only one is sent",
        "  column 'Duration (ms)' looks like duration in 'ms', but duration is in whole seconds",
    ]


def test_a_missing_required_column_is_one_message(tmp_path: Path) -> None:
    """No image column: one sheet-level error naming what the sheet has, not one per row."""
    path = write_sheet(tmp_path, "csv", [{"prompt": f"p{i}", "photo id": "x"} for i in range(5)])
    with pytest.raises(InputError) as info:
        checked(path)
    assert str(info.value) == (
        f"{path}: no image column; the sheet has: prompt, photo id "
        "(name one 'image', or in a job file write `columns: {image: \"...\"}`)"
    )


def test_a_default_stands_in_for_a_missing_column(tmp_path: Path) -> None:
    """A job file's default for image makes a sheet without an image column usable."""
    path = write_sheet(tmp_path, "csv", [{"prompt": "p"}])
    rows = checked(path, JobSpec(sheet=path, defaults={"image": URL}))
    assert rows[0].request["image"] == URL


def test_two_headers_for_one_field_are_refused(tmp_path: Path) -> None:
    """`image` and `Image URL` both read as image: which one is meant must be said."""
    path = write_sheet(tmp_path, "csv", [{"prompt": "p", "image": URL, "Image URL": URL}])
    with pytest.raises(InputError, match=r"columns 'image' and 'Image URL' all read as image"):
        checked(path)


def test_loose_readings_are_noted_once(tmp_path: Path) -> None:
    """A header read by another name is said once, in the layout's notes."""
    path = write_sheet(tmp_path, "csv", [{"Prompt": "p", "Image URL": URL, "seconds": "10"}] * 3)
    notes = layout(read_sheet(path), JobSpec(sheet=path)).notes
    assert notes == (
        "column 'Image URL' is read as image",
        "column 'seconds' is read as duration",
    )


def test_yaml_defaults_keys_are_read_like_headers(tmp_path: Path) -> None:
    """A YAML sheet's `defaults: {Duration: 10}` is applied, not dropped."""
    path = tmp_path / "s.yaml"
    path.write_text(
        json.dumps({"defaults": {"Duration": "10"}, "rows": [{"prompt": "p", "image": URL}]}),
        encoding="utf-8",
    )
    assert checked(path)[0].request["duration"] == 10


def test_job_file_field_names_are_read_like_headers(tmp_path: Path) -> None:
    """`columns: {Image URL: pic}` and `defaults: {Negative Prompt: x}` mean the fields."""
    write_sheet(tmp_path, "csv", [{"prompt": "p", "pic": URL}])
    job = tmp_path / "job.yaml"
    job.write_text(
        "sheet: s.csv\ncolumns: {Image URL: pic}\ndefaults: {Negative Prompt: blur}\n",
        encoding="utf-8",
    )
    spec = load_source(job)
    assert spec.columns == {"image": "pic"}
    assert spec.defaults == {"negative_prompt": "blur"}


def test_a_mapped_column_is_found_by_its_normal_form(tmp_path: Path) -> None:
    """`columns: {image: image url}` finds the header `Image URL`."""
    match = match_headers(
        tmp_path / "s.csv", ("prompt", "Image URL"), mapped={"image": "image url"}
    )
    assert match.fields == {"image": "Image URL", "prompt": "prompt"}


@pytest.mark.parametrize(
    "header", ["notes", "campaign", "owner", "title", "status", "description", "image_type"]
)
def test_the_users_own_columns_are_left_alone(header: str) -> None:
    """Ordinary column names are neither read as fields nor refused."""
    assert read_header(header).field is None
    assert read_header(header).problem is None


def test_normal_form() -> None:
    """NFKC, lower case, separators to one underscore, no surrounding space."""
    assert normal_form("\u00a0 Image - URL ") == "image_url"
    assert normal_form("Negative\tPrompt") == "negative_prompt"


def test_a_field_the_model_does_not_take_is_refused_not_dropped(tmp_path: Path) -> None:
    """An `End Frame` column is read as last_frame, said once; on a model that takes no last
    frame the row is refused naming the models that do, never sent without it."""
    path = write_sheet(tmp_path, "csv", [{"prompt": "p", "image": URL, "End Frame": URL}])
    sheet = read_sheet(path)
    assert layout(sheet, JobSpec(sheet=path)).notes == ("column 'End Frame' is read as last_frame",)
    row = checked(path)[0]
    assert row.status is Status.INVALID
    assert str(row.issues[0]).startswith(
        "row 1: End Frame: wan2.5-i2v-preview takes no last_frame; the models that do: wan2.6-i2v"
    )
