"""Every model's rules, both sides of every boundary, checked through a sheet with a model column.

The expectations are written out by hand from the model table of the API notes, not derived from
the catalog, so a wrong catalog entry fails here.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchwan.catalog.registry import get_model, model_names
from batchwan.catalog.spec import ALL_FIELDS, SIZE_TIERS
from batchwan.checks.validation import build_body, check_rows
from batchwan.sheet.loader import read_sheet
from batchwan.sim.rules import check_create_body
from batchwan.values import CheckedRow, JobSpec, Status

URL = "https://cdn.example.com/a.jpg"
LAST = "https://cdn.example.com/z.jpg"


@dataclass(frozen=True)
class Case:
    """What one model takes, as the API notes say it."""

    model: str
    kind: str  # i2v, kf2v or t2v
    prompt_max: int
    durations: tuple[int, ...]
    durations_text: str
    bad_duration: int
    outputs: tuple[str, ...]  # resolutions (i2v, kf2v) or sizes (t2v) it takes
    bad_output: str
    outputs_text: str
    audio: bool
    shot_type: bool
    template: bool
    last_frame: str  # none, optional or required


CASES = [
    Case("wan2.6-i2v", "i2v", 2000, (5, 10, 15), "5, 10 or 15", 20, ("720P", "1080P"), "480P",
         "720P or 1080P", audio=True, shot_type=True, template=False, last_frame="optional"),
    Case("wan2.5-i2v-preview", "i2v", 2000, (5, 10), "5 or 10", 15, ("480P", "720P", "1080P"),
         "4K", "480P, 720P or 1080P", audio=True, shot_type=False, template=False,
         last_frame="none"),
    Case("wan2.2-i2v-plus", "i2v", 800, (5,), "only 5", 10, ("480P", "1080P"), "720P",
         "480P or 1080P", audio=False, shot_type=False, template=False, last_frame="optional"),
    Case("wan2.2-i2v-flash", "i2v", 800, (5,), "only 5", 10, ("480P", "720P", "1080P"), "4K",
         "480P, 720P or 1080P", audio=False, shot_type=False, template=True, last_frame="none"),
    Case("wan2.6-i2v-spark", "i2v", 2000, (5, 10, 15), "5, 10 or 15", 20, ("1080P",), "720P",
         "only 1080P", audio=True, shot_type=True, template=False, last_frame="optional"),
    Case("wan2.5-i2v-spark", "i2v", 2000, (5, 10), "5 or 10", 15, ("720P", "1080P"), "480P",
         "720P or 1080P", audio=True, shot_type=False, template=False, last_frame="none"),
    Case("wan2.1-kf2v-plus", "kf2v", 800, (5,), "only 5", 10, ("720P",), "1080P", "only 720P",
         audio=False, shot_type=False, template=True, last_frame="required"),
    Case("wan2.6-t2v", "t2v", 2000, (5, 10, 15), "5, 10 or 15", 20,
         ("1280*720", "720*1280", "960*960", "1088*832", "832*1088", "1920*1080", "1080*1920",
          "1440*1440", "1632*1248", "1248*1632"), "1000*1000",
         "1280*720, 720*1280, 960*960, 1088*832, 832*1088, 1920*1080, 1080*1920, 1440*1440, "
         "1632*1248 or 1248*1632", audio=True, shot_type=True, template=False, last_frame="none"),
    Case("wan2.5-t2v-preview", "t2v", 2000, (5, 10), "5 or 10", 15,
         ("832*480", "480*832", "624*624", "1280*720", "1920*1080", "1248*1632"), "1000*1000",
         "832*480, 480*832, 624*624, 1280*720, 720*1280, 960*960, 1088*832, 832*1088, "
         "1920*1080, 1080*1920, 1440*1440, 1632*1248 or 1248*1632",
         audio=True, shot_type=False, template=False, last_frame="none"),
    Case("wan2.2-t2v-plus", "t2v", 800, (5,), "only 5", 10,
         ("832*480", "480*832", "624*624", "1920*1080", "1248*1632"), "1000*1000",
         "832*480, 480*832, 624*624, 1920*1080, 1080*1920, 1440*1440, 1632*1248 or 1248*1632",
         audio=False, shot_type=False, template=False, last_frame="none"),
    Case("wan2.6-t2v-spark", "t2v", 2000, (5, 10, 15), "5, 10 or 15", 20,
         ("1920*1080", "1080*1920", "1440*1440", "1632*1248", "1248*1632"), "1000*1000",
         "1920*1080, 1080*1920, 1440*1440, 1632*1248 or 1248*1632",
         audio=True, shot_type=True, template=False, last_frame="none"),
]  # fmt: skip
BY_NAME = {case.model: case for case in CASES}
IDS = [case.model for case in CASES]


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    """Rows as CSV, the union of their keys as the header."""
    header: list[str] = []
    for row in rows:
        header += [k for k in row if k not in header]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, header)
        writer.writeheader()
        writer.writerows(rows)
    return path


def base(case: Case) -> dict[str, str]:
    """A valid row for the model: prompt, and the frames it needs."""
    row = {"model": case.model, "prompt": "a red kite over the sea"}
    if case.kind != "t2v":
        row["image"] = URL
    if case.last_frame == "required":
        row["last_frame"] = LAST
    return row


def checked(tmp_path: Path, rows: list[dict[str, str]], **spec: Any) -> list[CheckedRow]:
    """Write the rows as a sheet and check them."""
    path = write_csv(tmp_path / "sheet.csv", rows)
    return check_rows(read_sheet(path), JobSpec(sheet=path, **spec))


def one(tmp_path: Path, case: Case, **cells: str) -> CheckedRow:
    """Check one row of the model, with these cells over a valid base."""
    return checked(tmp_path, [{**base(case), **cells}])[0]


def problems(row: CheckedRow) -> list[str]:
    """A row's problems as printed."""
    return [str(issue) for issue in row.issues]


def accepted_by_simulator(row: CheckedRow) -> None:
    """The body of a valid row passes the simulator's own check for that model."""
    assert row.status is Status.PENDING, problems(row)
    assert check_create_body(build_body(row), get_model(row.model)) is None


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_durations_both_sides(tmp_path: Path, case: Case) -> None:
    """Each duration the model takes is sent; the next one is refused naming model and values."""
    for seconds in case.durations:
        row = one(tmp_path, case, duration=str(seconds))
        accepted_by_simulator(row)
        assert row.request["duration"] == seconds
    row = one(tmp_path, case, duration=str(case.bad_duration))
    assert problems(row) == [
        f"row 1: duration: {case.model} takes {case.durations_text}, got {case.bad_duration}"
    ]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_resolutions_or_sizes_both_sides(tmp_path: Path, case: Case) -> None:
    """Resolutions (image models) or sizes (text models) the model takes pass; others do not."""
    column = "size" if case.kind == "t2v" else "resolution"
    for value in case.outputs:
        row = one(tmp_path, case, **{column: value})
        accepted_by_simulator(row)
        assert row.request[column] == value
    row = one(tmp_path, case, **{column: case.bad_output})
    assert row.status is Status.INVALID
    assert problems(row) == [
        f"row 1: {column}: {case.model} takes {case.outputs_text}, got {case.bad_output}"
    ]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_prompt_length_both_sides(tmp_path: Path, case: Case) -> None:
    """A prompt of the model's limit is sent; one character more is refused."""
    accepted_by_simulator(one(tmp_path, case, prompt="p" * case.prompt_max))
    row = one(tmp_path, case, prompt="p" * (case.prompt_max + 1))
    assert problems(row) == [
        f"row 1: prompt: {case.prompt_max + 1} characters; {case.model} takes at most "
        f"{case.prompt_max} (shorten it)"
    ]


@pytest.mark.parametrize(
    ("model", "length", "ok"),
    [("wan2.2-i2v-plus", 800, True), ("wan2.2-i2v-plus", 801, False),
     ("wan2.6-t2v", 2000, True), ("wan2.6-t2v", 2001, False),
     ("wan2.1-kf2v-plus", 801, False), ("wan2.5-i2v-spark", 2001, False)],
)  # fmt: skip
def test_prompt_800_and_2000(tmp_path: Path, model: str, length: int, ok: bool) -> None:
    """The two prompt limits of the table, 800/801 and 2000/2001, on models of each."""
    row = one(tmp_path, BY_NAME[model], prompt="q" * length)
    assert (row.status is Status.PENDING) is ok


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_negative_prompt_and_seed_both_sides(tmp_path: Path, case: Case) -> None:
    """Every model: negative prompt 500/501 characters, seed 2147483647/2147483648."""
    accepted_by_simulator(one(tmp_path, case, negative_prompt="n" * 500, seed="2147483647"))
    row = one(tmp_path, case, negative_prompt="n" * 501, seed="2147483648")
    assert problems(row) == [
        f"row 1: negative_prompt: 501 characters; {case.model} takes at most 500 (shorten it)",
        "row 1: seed: must be a whole number from 0 to 2147483647, got 2147483648",
    ]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_frames(tmp_path: Path, case: Case) -> None:
    """The first frame is required by image models and refused (not dropped) by text models;
    the last frame is required, optional or refused as the model says."""
    if case.kind == "t2v":
        row = one(tmp_path, case, image=URL)
        assert problems(row) == [
            f"row 1: image: {case.model} is a text-to-video model and takes no image; "
            "leave image empty or choose an image-to-video model"
        ]
    else:
        row = one(tmp_path, case, image="")
        assert problems(row) == [
            "row 1: image: is empty; give an http(s) URL, a data: URI, or a path to a file "
            "beside the sheet"
        ]
    if case.last_frame == "required":
        row = one(tmp_path, case, last_frame="")
        assert problems(row) == [
            f"row 1: last_frame: is empty; {case.model} needs a last frame too: give an http(s) "
            "URL, a data: URI, or a path to a file beside the sheet"
        ]
    elif case.last_frame == "optional":
        row = one(tmp_path, case, last_frame=LAST)
        accepted_by_simulator(row)
        assert build_body(row)["last_frame"] == LAST
    else:
        row = one(tmp_path, case, last_frame=LAST)
        assert problems(row) == [
            f"row 1: last_frame: {case.model} takes no last_frame; the models that do: "
            "wan2.6-i2v, wan2.2-i2v-plus, wan2.6-i2v-spark, wan2.1-kf2v-plus"
        ]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_audio_fields(tmp_path: Path, case: Case) -> None:
    """Models with sound take audio and audio_url; the others refuse each of them."""
    row = one(tmp_path, case, audio="false", audio_url="https://x.org/a.mp3")
    if case.audio:
        accepted_by_simulator(row)
        assert (row.request["audio"], row.request["audio_url"]) == (False, "https://x.org/a.mp3")
    else:
        assert problems(row) == [
            f"row 1: audio: {case.model} makes no sound and takes no audio; leave audio empty",
            f"row 1: audio_url: {case.model} makes no sound and takes no audio_url; "
            "leave audio_url empty",
        ]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_shot_type(tmp_path: Path, case: Case) -> None:
    """shot_type single/multi where the model has it, multi only with prompt_extend."""
    if not case.shot_type:
        row = one(tmp_path, case, shot_type="single")
        assert problems(row) == [
            f"row 1: shot_type: {case.model} takes no shot_type; the models that do: "
            "wan2.6-i2v, wan2.6-i2v-spark, wan2.6-t2v, wan2.6-t2v-spark"
        ]
        return
    accepted_by_simulator(one(tmp_path, case, shot_type="Single"))
    accepted_by_simulator(one(tmp_path, case, shot_type="multi"))
    accepted_by_simulator(one(tmp_path, case, shot_type="multi", prompt_extend="true"))
    row = one(tmp_path, case, shot_type="multi", prompt_extend="false")
    assert problems(row) == [
        "row 1: shot_type: multi needs prompt_extend; set prompt_extend to true or shot_type "
        "to single"
    ]
    row = one(tmp_path, case, shot_type="triple")
    assert problems(row) == [f"row 1: shot_type: {case.model} takes single or multi, got triple"]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_template(tmp_path: Path, case: Case) -> None:
    """A template (named effect) where the model allows one; refused elsewhere."""
    row = one(tmp_path, case, template="solaron")
    if case.template:
        accepted_by_simulator(row)
        assert row.request["template"] == "solaron"
        assert one(tmp_path, case, template="two words").status is Status.INVALID
    else:
        assert problems(row) == [
            f"row 1: template: {case.model} takes no template; the models that do: "
            "wan2.2-i2v-flash, wan2.1-kf2v-plus"
        ]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_body_always_states_resolution_or_size_and_duration(tmp_path: Path, case: Case) -> None:
    """A row that leaves them out is sent with its model's defaults, which the plan priced."""
    row = one(tmp_path, case)
    body = build_body(row)
    assert body["duration"] == 5
    defaults = {"wan2.2-i2v-plus": "1080P", "wan2.6-i2v-spark": "1080P"}
    sizes = {"wan2.2-t2v-plus": "1920*1080", "wan2.6-t2v-spark": "1920*1080"}
    if case.kind == "t2v":
        assert body["size"] == sizes.get(case.model, "1280*720")
        assert "resolution" not in body
    else:
        assert body["resolution"] == defaults.get(case.model, "720P")
        assert "size" not in body
    accepted_by_simulator(row)


def test_a_tier_on_a_text_model_means_its_landscape_size(tmp_path: Path) -> None:
    """`720P` on a text model is sent as size 1280*720, and the row says so."""
    row = one(tmp_path, BY_NAME["wan2.6-t2v"], resolution="720p")
    assert row.status is Status.PENDING
    assert row.request == {"prompt": "a red kite over the sea", "size": "1280*720"}
    assert row.notes == (
        "resolution: 720P on wan2.6-t2v is sent as size 1280*720 (the 720P landscape size; "
        "write a size to choose another)",
    )
    assert row.resolution == "720P"
    accepted_by_simulator(row)


def test_text_model_resolution_and_size(tmp_path: Path) -> None:
    """A tier the text model lacks is refused; a size in another tier than the resolution too;
    sizes written 1280x720 are read as 1280*720."""
    row = one(tmp_path, BY_NAME["wan2.6-t2v-spark"], resolution="720P")
    assert problems(row) == ["row 1: resolution: wan2.6-t2v-spark takes only 1080P, got 720P"]
    row = one(tmp_path, BY_NAME["wan2.6-t2v"], resolution="720P", size="1920*1080")
    assert problems(row) == [
        "row 1: resolution: 720P and size 1920*1080 disagree; give only one of them"
    ]
    row = one(tmp_path, BY_NAME["wan2.6-t2v"], resolution="1080P", size="1440*1440")
    assert (row.status, row.request["size"], row.notes) == (Status.PENDING, "1440*1440", ())
    row = one(tmp_path, BY_NAME["wan2.5-t2v-preview"], size="832 x 480")
    assert (row.request["size"], row.resolution) == ("832*480", "480P")
    row = one(tmp_path, BY_NAME["wan2.2-t2v-plus"], size="1280*720")
    assert problems(row) == [
        "row 1: size: 1280*720 is a 720P size; wan2.2-t2v-plus takes 480P or 1080P sizes: "
        "832*480, 480*832, 624*624, 1920*1080, 1080*1920, 1440*1440, 1632*1248 or 1248*1632"
    ]


def test_size_on_an_image_model_is_refused(tmp_path: Path) -> None:
    """Image models choose their output by resolution; a size there is refused, not dropped."""
    row = one(tmp_path, BY_NAME["wan2.6-i2v"], size="1280*720")
    assert problems(row) == ["row 1: size: wan2.6-i2v takes resolution (720P or 1080P), not size"]


def test_flash_1080p_is_accepted_with_a_note(tmp_path: Path) -> None:
    """1080P on wan2.2-i2v-flash is listed by one source only: sent, and the row says so."""
    row = one(tmp_path, BY_NAME["wan2.2-i2v-flash"], resolution="1080P")
    assert row.status is Status.PENDING
    assert row.notes == (
        "resolution: 1080P on wan2.2-i2v-flash is listed on one page only; the provider may "
        "refuse it (480P or 720P are sure)",
    )


def test_defaults_a_model_does_not_take_are_not_sent_and_said(tmp_path: Path) -> None:
    """A job default (audio: false) on a row whose model makes no sound is left out, with a
    note; the same value in the row's own cell is refused."""
    rows = [base(BY_NAME["wan2.2-i2v-plus"]), base(BY_NAME["wan2.6-i2v"])]
    plus, wan26 = checked(tmp_path, rows, defaults={"audio": False})
    assert plus.status is Status.PENDING
    assert "audio" not in plus.request
    assert plus.notes == (
        "audio: the default false is not sent: wan2.2-i2v-plus makes no sound and takes no "
        "audio; leave audio empty",
    )
    assert wan26.request["audio"] is False


def test_model_cells_are_read_in_any_case_and_win_over_the_job(tmp_path: Path) -> None:
    """A row's model cell wins over the job's model, in any case; an empty cell takes the job's."""
    rows = [
        {"model": " WAN2.6-I2V ", "prompt": "a", "image": URL, "duration": "15"},
        {"model": "", "prompt": "b", "image": URL, "duration": "15"},
    ]
    first, second = checked(tmp_path, rows, model="wan2.2-i2v-flash")
    assert (first.model, first.status) == ("wan2.6-i2v", Status.PENDING)
    assert second.model == "wan2.2-i2v-flash"
    assert problems(second) == ["row 2: duration: wan2.2-i2v-flash takes only 5, got 15"]


def test_same_content_on_two_models_is_not_a_duplicate(tmp_path: Path) -> None:
    """The model is part of a row's content: one prompt on two models is two rows."""
    rows = [
        {"model": "wan2.6-i2v", "prompt": "a", "image": URL},
        {"model": "wan2.5-i2v-spark", "prompt": "a", "image": URL},
        {"model": "wan2.6-i2v", "prompt": "a", "image": URL},
    ]
    first, second, third = checked(tmp_path, rows)
    assert (first.status, second.status, third.status) == (
        Status.PENDING, Status.PENDING, Status.DUPLICATE,
    )  # fmt: skip
    assert first.key != second.key


def test_default_model_rows_keep_their_keys(tmp_path: Path) -> None:
    """Rows of the default model hash as before models were per row: old run folders continue."""
    import hashlib
    import json

    row = checked(tmp_path, [{"prompt": "a", "image": URL, "duration": "10"}])[0]
    request = {"prompt": "a", "image": URL, "duration": 10}
    blob = json.dumps(request, sort_keys=True, separators=(",", ":")).encode("ascii")
    assert row.key == hashlib.sha256(blob).hexdigest()[:16]


# -- validation and the simulator agree ------------------------------------------------------------


_VALUES = st.sampled_from(
    [
        "", "5", "10", "15", "7", "480P", "720p", "1080P", "4K", "true", "false", "no", "single",
        "multi", "solaron", "0", "2147483647", "2147483648", URL, "https://x.org/a.mp3",
        *[size for sizes in SIZE_TIERS.values() for size in sizes[:2]], "1280x720", "p" * 801,
    ]
) | st.text(max_size=12)  # fmt: skip


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    model=st.sampled_from(model_names()),
    cells=st.dictionaries(st.sampled_from(ALL_FIELDS), _VALUES, max_size=6),
)
def test_every_row_validation_passes_the_simulator_takes(
    tmp_path: Path, model: str, cells: dict[str, str]
) -> None:
    """Whatever the cells, a row that validation passes is a body its model's path accepts (the
    simulator checks independently), and every refusal names a column."""
    row = {"model": model, "prompt": "a kite", **cells}
    if "image" in cells and cells["image"] not in ("", URL):
        row["image"] = URL  # local files are tested elsewhere; here, any text but a path
    if "last_frame" in cells and cells["last_frame"] not in ("", URL):
        row["last_frame"] = LAST
    checked_row = checked(tmp_path, [row])[0]
    if checked_row.status is Status.PENDING:
        assert check_create_body(build_body(checked_row), get_model(model)) is None
    else:
        assert all(issue.column for issue in checked_row.issues)


def test_the_model_column_can_be_mapped_and_a_header_in_other_case_is_read(tmp_path: Path) -> None:
    """`columns: {model: Engine}` reads the model from Engine; a header `Model` is read as the
    model column, never carried as the user's own column and left unused."""
    rows = [{"Engine": "wan2.6-t2v", "prompt": "a", "duration": "15"}]
    (row,) = checked(tmp_path, rows, columns={"model": "Engine"})
    assert (row.model, row.status, row.extra) == ("wan2.6-t2v", Status.PENDING, {})
    (row,) = checked(tmp_path, [{"Model": "wan2.6-t2v", "prompt": "a", "duration": "15"}])
    assert (row.model, row.status, row.extra) == ("wan2.6-t2v", Status.PENDING, {})


def test_a_default_a_model_cannot_take_says_where_it_came_from(tmp_path: Path) -> None:
    """`defaults: resolution: 720P` over a model without 720P: the row is refused, and the
    message says the value came from the defaults."""
    rows = [base(BY_NAME["wan2.2-i2v-plus"]), base(BY_NAME["wan2.2-t2v-plus"])]
    plus, text = checked(tmp_path, rows, defaults={"resolution": "720P"})
    assert problems(plus) == [
        "row 1: resolution: wan2.2-i2v-plus takes 480P or 1080P, got 720P (from the defaults; "
        "set this row's own cell)"
    ]
    assert problems(text) == [
        "row 2: resolution: wan2.2-t2v-plus takes 480P or 1080P, got 720P (from the defaults; "
        "set this row's own cell)"
    ]
