"""The model catalog: one spec per model, lookup by name, and no API limit written elsewhere."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from batchwan.catalog.models import MODELS
from batchwan.catalog.prices import PriceBook, parse_prices
from batchwan.catalog.registry import REGISTRY, find_model, get_model, model_names
from batchwan.catalog.spec import IMAGE_LIMITS, Frame, Kind, ModelSpec
from batchwan.errors import InputError
from batchwan.provider.client import generation_path

PACKAGE = Path(__file__).resolve().parent.parent / "batchwan"
KNOWN = (
    "wan2.6-i2v, wan2.5-i2v-preview, wan2.2-i2v-plus, wan2.2-i2v-flash, wan2.6-i2v-spark, "
    "wan2.5-i2v-spark, wan2.1-kf2v-plus, wan2.6-t2v, wan2.5-t2v-preview, wan2.2-t2v-plus, "
    "wan2.6-t2v-spark"
)


def test_every_model_of_the_notes_is_registered_once() -> None:
    """The eleven models of the API notes, in their order, each under its own name."""
    assert ", ".join(model_names()) == KNOWN
    assert len({spec.name for spec in MODELS}) == len(MODELS) == 11


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("wan2.5-i2v-preview", "/vendors/alibaba/v1/wan2.5-i2v-preview/generation"),
        ("wan2.6-i2v-spark", "/vendors/mulerouter/v1/wan2.6-i2v-spark/generation"),
        ("wan2.5-i2v-spark", "/vendors/mulerouter/v1/wan2.5-i2v-spark/generation"),
        ("wan2.6-t2v-spark", "/vendors/mulerouter/v1/wan2.6-t2v-spark/generation"),
        ("wan2.1-kf2v-plus", "/vendors/alibaba/v1/wan2.1-kf2v-plus/generation"),
    ],
)
def test_paths_name_the_vendor(name: str, path: str) -> None:
    """MuleRouter's own fine-tunes live under its vendor; the client takes the path from there."""
    assert get_model(name).path == path
    assert generation_path(name) == path


def test_the_client_keeps_building_paths_for_unregistered_names() -> None:
    """A name the catalog does not know still gets Alibaba's path pattern from the client."""
    assert generation_path("wan9-x") == "/vendors/alibaba/v1/wan9-x/generation"


def test_unknown_names_list_the_known_models() -> None:
    """Looking up an unknown name says which names there are."""
    with pytest.raises(KeyError) as caught:
        get_model("wan2.6-i2vv")
    assert caught.value.args[0] == f"unknown model 'wan2.6-i2vv'; the models are: {KNOWN}"
    assert find_model(" Wan2.6-I2V ") is REGISTRY["wan2.6-i2v"]


@pytest.mark.parametrize(
    ("name", "fields"),
    [
        ("wan2.5-i2v-preview", "prompt image negative_prompt audio audio_url resolution duration "
         "prompt_extend seed safety_filter"),
        ("wan2.6-i2v", "prompt image last_frame negative_prompt audio audio_url resolution "
         "duration shot_type prompt_extend seed safety_filter"),
        ("wan2.2-i2v-flash", "prompt image negative_prompt resolution duration template "
         "prompt_extend seed safety_filter"),
        ("wan2.1-kf2v-plus", "prompt image last_frame negative_prompt resolution duration "
         "template prompt_extend seed safety_filter"),
        ("wan2.2-t2v-plus", "prompt negative_prompt size duration prompt_extend seed "
         "safety_filter"),
    ],
)  # fmt: skip
def test_fields_follow_the_kind(name: str, fields: str) -> None:
    """Each model's fields: its frames, audio, output choice and extras."""
    assert " ".join(get_model(name).fields) == fields


def test_the_image_checker_limits_fit_every_model() -> None:
    """The image checker probes with one set of limits: every model must share it (a model with
    other limits needs them passed to the checker)."""
    assert all(spec.image == IMAGE_LIMITS for spec in MODELS)


def test_a_new_model_is_one_entry() -> None:
    """A spec made by hand has its path, fields and defaults without any other code."""
    spec = ModelSpec(
        "wan9-t2v", "alibaba", Kind.TEXT_TO_VIDEO, prompt_max=100, resolutions=("480P",),
        default_resolution="480P", durations=(4,), default_duration=4, audio=False,
        prices={"480P": None},
    )  # fmt: skip
    assert (spec.path, spec.default_size, spec.sizes[0]) == (
        "/vendors/alibaba/v1/wan9-t2v/generation", "832*480", "832*480",
    )  # fmt: skip
    with pytest.raises(ValueError, match="requires last_frame"):
        ModelSpec(
            "x", "alibaba", Kind.FIRST_AND_LAST_FRAME, prompt_max=1, resolutions=("720P",),
            default_resolution="720P", durations=(5,), default_duration=5, audio=False,
            prices={"720P": 1.0}, last_frame=Frame.OPTIONAL,
        )  # fmt: skip


@pytest.mark.parametrize(
    ("model", "resolution", "price"),
    [
        ("wan2.5-i2v-preview", "480P", 0.05),
        ("wan2.6-i2v", "1080P", 0.15),
        ("wan2.6-i2v-spark", "1080P", 0.15),  # spark: its base model's price
        ("wan2.5-i2v-spark", "720P", 0.10),
        ("wan2.2-i2v-plus", "480P", 0.02),
        ("wan2.2-t2v-plus", "1080P", 0.10),
        ("wan2.1-kf2v-plus", "720P", 0.10),
        ("wan2.5-t2v-preview", "1080P", 0.15),
        ("wan2.2-i2v-flash", "720P", None),  # unknown, never zero
        ("wan2.6-i2v", "480P", None),  # not a tier of the model
    ],
)
def test_registry_prices(model: str, resolution: str, price: float | None) -> None:
    """The default prices, USD per second, with None where nobody knows."""
    assert PriceBook().per_second(model, resolution) == price


def test_job_prices_override_per_resolution_and_per_model() -> None:
    """`prices:` per resolution applies to every model; a model's own line wins over it."""
    by_res, by_model = parse_prices({"720p": 0.2, "wan2.2-i2v-flash": {480: 0.015, "720P": 0.036}})
    book = PriceBook(by_res, by_model)
    assert book.per_second("wan2.6-i2v", "720P") == 0.2
    assert book.per_second("wan2.2-i2v-flash", "720P") == 0.036
    assert book.per_second("wan2.2-i2v-flash", "480P") == 0.015
    assert book.per_second("wan2.2-i2v-flash", "1080P") is None
    assert book.cost("wan2.6-i2v", "1080P", 10) == pytest.approx(1.5)


@pytest.mark.parametrize(
    ("prices", "message"),
    [
        ({"4K": 1}, "`prices:` has '4K'; use 480P, 720P, 1080P (every model)"),
        ({"wan9": {"720P": 1}}, "`prices:` has 'wan9': unknown model 'wan9'; the models are:"),
        ({"wan2.6-i2v": {"480P": 1}}, "`prices:` wan2.6-i2v has '480P'; wan2.6-i2v renders"),
        ({"wan2.6-i2v": {"720P": -1}}, "`prices: wan2.6-i2v: 720P:` must be a number of at least"),
        ({"720P": "cheap"}, "`prices: 720P:` must be a number of at least 0, got 'cheap'"),
    ],
)
def test_bad_price_tables_say_which_key(prices: dict[str, object], message: str) -> None:
    """Each mistake in `prices:` names its key and what would be accepted."""
    with pytest.raises(InputError) as caught:
        parse_prices(prices)
    assert str(caught.value).startswith(message)


# -- no API limit outside the catalog ------------------------------------------------------------

#: Numbers that mean an API limit wherever they appear (10 MB and 15 MB as the API reads them).
LIMIT_NUMBERS = {360, 2147483647, 10_000_000, 15_000_000}
_SIZES = re.compile(r"prompt|negative|side|seed|image|frame|\bpx\b", re.IGNORECASE)
_MEDIA = re.compile(r"image|frame|audio", re.IGNORECASE)
#: Numbers (or products such as 10 * 1024 * 1024) that mean an API limit when their line speaks
#: of what the API limits: 500 is also an HTTP status, 2000 a count of rows sampled, 5 and 10
#: many a timeout, 10 MiB a cap on an error body.
CONTEXT_NUMBERS = {
    500: _SIZES,
    800: _SIZES,
    2000: _SIZES,
    **dict.fromkeys((5, 10, 15), re.compile(r"\bduration", re.IGNORECASE)),
    **dict.fromkeys((3, 30), re.compile(r"\baudio", re.IGNORECASE)),
    **dict.fromkeys((10 * 1024 * 1024, 15 * 1024 * 1024), _MEDIA),
}
#: Text in code (not docstrings) that spells out a limit or a model's choice.
LIMIT_TEXT = re.compile(
    r"\b(?:480|720|1080)P\b|\b\d{3,4}\*\d{3,4}\b|\b(?:10|15) ?MB\b|\b360\b|\b2147483647\b"
    r"|\b5 or 10\b|\b3-30 s\b"
)


def _megabytes(node: ast.AST) -> bool:
    """``10 * MB`` or ``15 * MB``: the API's byte limits written with a unit name."""
    return (
        isinstance(node, ast.BinOp)
        and isinstance(node.op, ast.Mult)
        and isinstance(node.left, ast.Constant)
        and node.left.value in (10, 15)
        and isinstance(node.right, ast.Name)
        and node.right.id.upper() in ("MB", "MIB")
    )


def _folded(node: ast.AST) -> object:
    """The value of a constant or of a product/sum of constants, else None."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult | ast.Add):
        left, right = _folded(node.left), _folded(node.right)
        if isinstance(left, int) and isinstance(right, int):
            return left * right if isinstance(node.op, ast.Mult) else left + right
    return None


def _docstrings(tree: ast.AST) -> set[int]:
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def limit_literals(source: str) -> list[tuple[int, str]]:
    """(line, what) for every API limit written in a module's code."""
    tree = ast.parse(source)
    docs = _docstrings(tree)
    lines = source.splitlines()
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant | ast.BinOp) or id(node) in docs:
            continue
        value = _folded(node)
        if _megabytes(node):
            found.append((node.lineno, ast.unparse(node)))
        elif isinstance(value, str) and LIMIT_TEXT.search(value):
            found.append((node.lineno, repr(value)))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            words = CONTEXT_NUMBERS.get(value)
            if value in LIMIT_NUMBERS or (words and words.search(lines[node.lineno - 1])):
                found.append((node.lineno, repr(value)))
    return found


@pytest.mark.parametrize(
    ("source", "hits"),
    [
        ("MAX_SIDE = 2000\n", 1),
        ("MAX_SIDE, MIN_SIDE = 2000, 360\n", 2),
        ("if len(prompt) > 800:\n    pass\n", 1),
        ("DURATIONS = (5, 10)\n", 2),
        ("MAX_IMAGE_BYTES = 10 * 1024 * 1024\n", 1),
        ("seconds = audio_length(3, 30)\n", 2),
        ("limit = 10_000_000\n", 1),
        ("MAX_AUDIO_BYTES = 15 * MB\n", 1),
        ("MAX_ERROR_BODY = 10 * 1024 * 1024\n", 0),
        ("x = f'must be 5 or 10, got {d}'\n", 1),
        ("r = request.get('resolution', '720P')\n", 1),
        ("size = '1280*720'\n", 1),
        ("if 500 <= status < 600:\n    pass\n", 0),
        ("WIDTH_SAMPLE = 2000  # rows looked at\n", 0),
        ("timeout = 10\n", 0),
        ("def f():\n    '''Each side 360-2000 px, at most 10 MB.'''\n", 0),
    ],
)
def test_the_scan_finds_limits_and_leaves_the_rest(source: str, hits: int) -> None:
    """The scanner itself: limits in code are found; HTTP statuses and docstrings are not."""
    assert len(limit_literals(source)) == hits


def test_no_api_limit_is_written_outside_the_catalog() -> None:
    """Every limit, choice and default of the API is read from batchwan.catalog, nowhere else."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "catalog" in path.relative_to(PACKAGE).parts:
            continue
        for line, what in limit_literals(path.read_text(encoding="utf-8")):
            found.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {what}")
    assert found == [], "read these from batchwan.catalog instead:\n" + "\n".join(found)
