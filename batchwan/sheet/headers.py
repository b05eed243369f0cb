"""Match a sheet's headers to the API's fields the way a person reads them.

``Image URL``, ``image_url``, ``IMAGE-URL`` and ``first frame`` all mean the field ``image``:
case, surrounding and non-breaking spaces, spaces or hyphens for underscores, and the common
names of each field are all read. A header that still looks like a field but is not one of its
names (``Promt``, ``prompt2``, ``res``, ``Duration (ms)``) is never carried silently as the
user's own column: the sheet is refused, naming the column and the ``columns:`` line of a job
file that says what it means. The one exception is a unit of seconds on the duration
(``Duration (s)``, ``seconds``): it can only mean one thing, so it is read, and said once.

The same rules apply to every format (CSV, TSV, XLSX, YAML and JSONL keys) and to the field
names of a job file's ``columns:`` and ``defaults:``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from batchwan.catalog.spec import ALL_FIELDS
from batchwan.errors import InputError

#: Every field a sheet column may feed: the create call's fields of every model in the
#: catalog, the row's ``model`` and its own ``id``, and ``take`` (a deliberate second take of
#: the same request). The model registry knows which of them each model sends.
FIELDS: tuple[str, ...] = (*ALL_FIELDS, "model", "id", "take")

#: The other names people give each field, in their normal form (see ``normal_form``).
ALIASES: dict[str, tuple[str, ...]] = {
    "prompt": ("prompts", "text_prompt", "prompt_text", "positive_prompt", "prompt_en"),
    "image": (
        "images", "image_url", "image_urls", "img", "img_url", "image_path", "image_file",
        "image_name", "image_link", "input_image", "first_frame", "first_frame_url",
        "first_frame_image", "start_frame", "start_image", "picture", "photo",
    ),
    "negative_prompt": ("negative", "neg_prompt", "negative_prompts", "negative_text"),
    "audio": ("auto_audio", "generate_audio", "with_audio"),
    "audio_url": ("audio_link", "audio_file", "audio_path", "sound_url", "music_url"),
    "resolution": ("video_resolution", "output_resolution"),
    "duration": ("video_duration", "duration_s", "duration_sec", "duration_secs",
                 "duration_seconds", "duration_in_seconds", "seconds", "secs"),
    "prompt_extend": ("extend_prompt", "prompt_expansion", "expand_prompt"),
    "seed": ("random_seed", "seed_value"),
    "safety_filter": ("safety", "content_filter"),
    "model": ("model_name", "wan_model"),
    "last_frame": ("last_frame_url", "last_image", "end_frame", "end_frame_url", "end_image",
                   "final_frame", "tail_frame"),
    "size": ("video_size", "output_size"),
    # Not "shot" alone: a storyboard names its shots in a column of that name.
    "shot_type": ("shot_kind", "multi_shots"),
    "template": ("effect", "effect_template", "template_name"),
    "id": ("row_id", "identifier"),
    "take": ("take_number", "take_no"),
}  # fmt: skip

#: Names that read as a field but could mean something else; a person must say which.
AMBIGUOUS: dict[str, str] = {
    "res": "resolution",
    "length": "duration",
    "len": "duration",
    "dur": "duration",
    "time": "duration",
    "neg": "negative_prompt",
    "url": "image",
    "link": "image",
    "frame": "image",
    "filter": "safety_filter",
    "extend": "prompt_extend",
}

_SECONDS = frozenset({"s", "sec", "secs", "second", "seconds"})
_UNIT = re.compile(r"^(?P<name>.*?)[\s_]*[\(\[](?P<unit>[^\)\]]*)[\)\]]\s*$")
_SEPARATORS = re.compile(r"[\s\-\./]+")
_TRAILING_NUMBER = re.compile(r"^(?P<name>.*?)_?(?P<number>[0-9]+)$")


def normal_form(header: str) -> str:
    """A header as compared: NFKC, lower case, no surrounding space, ``_`` between words."""
    text = unicodedata.normalize("NFKC", header).strip().lower()
    text = _SEPARATORS.sub("_", text)
    return re.sub(r"_+", "_", text).strip("_")


def _build_names() -> dict[str, str]:
    names = {field: field for field in FIELDS}
    for field, aliases in ALIASES.items():
        for alias in aliases:
            names[alias] = field
    return names


#: normal form -> field, for every name a field is known by.
NAMES: dict[str, str] = _build_names()


@dataclass(frozen=True)
class HeaderReading:
    """What one header means: a field (with a note when read loosely), or a problem."""

    field: str | None = None  # the field it is read as
    note: str | None = None  # said once when the header was read loosely
    problem: str | None = None  # why it is refused
    guess: str | None = None  # the field a refused header most likely means


def _osa_distance(a: str, b: str, cap: int) -> int:
    """Edits (insert, delete, replace, swap of neighbours) from a to b, counted up to cap+1."""
    if abs(len(a) - len(b)) > cap:
        return cap + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, start=1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]


def _near_field(name: str) -> str | None:
    """The field a misspelt header most likely means, or None when it looks like none."""
    best: tuple[int, str] | None = None
    for known, field in NAMES.items():
        if len(known) < 4:
            continue  # `id`, `img`: too short to tell a slip from another word
        cap = 1 if len(known) <= 5 else 2
        distance = _osa_distance(name, known, cap)
        if distance <= cap and (best is None or distance < best[0]):
            best = (distance, field)
    return best[1] if best else None


def read_header(header: str) -> HeaderReading:
    """What a header means to batchwan (no job file involved)."""
    name = normal_form(header)
    if name in NAMES:
        field = NAMES[name]
        note = f"column {header!r} is read as {field}" if name != field else None
        return HeaderReading(field, note)
    unit = _UNIT.match(unicodedata.normalize("NFKC", header))
    base = NAMES.get(normal_form(unit["name"])) if unit else None
    if unit and base is not None:
        given = unit["unit"].strip().lower()
        if base == "duration" and given in _SECONDS:
            return HeaderReading(base, f"column {header!r} is read as duration, in seconds")
        hint = _UNIT_HINT.get(base, "written without a unit")
        problem = f"column {header!r} looks like {base} in {given!r}, but {base} is {hint}"
        return HeaderReading(problem=problem, guess=base)
    numbered = _TRAILING_NUMBER.match(name)
    if numbered and numbered["name"] in NAMES:
        base = NAMES[numbered["name"]]
        problem = f"column {header!r} looks like a second {base} column, and only one is sent"
        return HeaderReading(problem=problem, guess=base)
    if name in AMBIGUOUS:
        base = AMBIGUOUS[name]
        problem = f"column {header!r} may mean {base}, but is not one of its names"
        return HeaderReading(problem=problem, guess=base)
    near = _near_field(name) if name else None
    if near is not None:
        return HeaderReading(problem=f"column {header!r} looks like {near} misspelt", guess=near)
    return HeaderReading()


_UNIT_HINT = {
    "duration": "in whole seconds",
    "resolution": "written as a tier name (see the Models table)",
}


def canonical_field(name: str) -> str | None:
    """The field a job file's key means (``Image URL`` -> ``image``), or None."""
    return NAMES.get(normal_form(str(name)))


@dataclass(frozen=True)
class HeaderMatch:
    """Which column feeds each field, the user's own columns, and what was read loosely."""

    fields: dict[str, str]  # field -> the sheet's column
    extra: tuple[str, ...]  # the user's own columns, in sheet order
    notes: tuple[str, ...] = ()


def _fix_line(field: str, column: str) -> str:
    return f'rename it {field!r}, or in a job file write `columns: {{{field}: "{column}"}}`'


def match_headers(
    path: Path,
    columns: Sequence[str],
    *,
    known: Iterable[str] = FIELDS,
    mapped: Mapping[str, str] | None = None,
    required: Iterable[str] = (),
    defaulted: Iterable[str] = (),
) -> HeaderMatch:
    """Match every column of a sheet at once; one InputError listing every header problem.

    ``known``: the fields this run sends (others are the user's own columns). ``mapped``: a
    job file's ``columns:`` (field -> column), which wins over any header. ``required``:
    fields without which no row can be sent, unless ``defaulted`` gives them a value.
    """
    mapped = dict(mapped or {})
    problems: list[str] = []
    fields = _mapped_fields(mapped, columns, problems)
    guessed: set[str] = set()
    claimed, notes = _read_headers(
        columns, set(known), mapped, set(fields.values()), problems, guessed
    )
    for field, names in claimed.items():
        if len(names) > 1:
            listed = " and ".join(repr(n) for n in names)
            problems.append(
                f"columns {listed} all read as {field}; rename all but one, or in a job file "
                f'write `columns: {{{field}: "{names[0]}"}}`'
            )
            continue
        fields[field] = names[0]
    # A field a near-miss header was taken for is covered by that header's message.
    for field in (f for f in required if f not in {*fields, *mapped, *defaulted, *guessed}):
        problems.append(
            f"no {field} column; the sheet has: {', '.join(columns) or 'no columns'} "
            f'(name one {field!r}, or in a job file write `columns: {{{field}: "..."}}`)'
        )
    if len(problems) == 1:
        raise InputError(f"{path}: {problems[0]}")
    if problems:
        listed = "\n".join(f"  {p}" for p in problems)
        raise InputError(f"{path}: {len(problems)} problems with the header:\n{listed}")
    used = set(fields.values())
    return HeaderMatch(fields, tuple(c for c in columns if c not in used), tuple(notes))


def _mapped_fields(
    mapped: Mapping[str, str], columns: Sequence[str], problems: list[str]
) -> dict[str, str]:
    """The job file's ``columns:``, each matched to a header exactly or in its normal form."""
    fields: dict[str, str] = {}
    present = set(columns)
    for field, column in mapped.items():
        chosen = column if column in present else _by_normal_form(column, columns)
        if chosen is None:
            problems.append(
                f"the job file maps {field} to column {column!r}, which the sheet does not "
                f"have; its columns are: {', '.join(columns)}"
            )
            continue
        fields[field] = chosen
    return fields


def _read_headers(
    columns: Sequence[str],
    known: set[str],
    mapped: Mapping[str, str],
    taken: set[str],
    problems: list[str],
    guessed: set[str],
) -> tuple[dict[str, list[str]], list[str]]:
    """field -> the headers that read as it, and the notes for headers read loosely."""
    claimed: dict[str, list[str]] = {}
    notes: list[str] = []
    for column in columns:
        if column in taken:
            continue
        reading = read_header(column)
        if reading.problem is not None:
            guess = reading.guess or ""
            if guess not in mapped:  # else the job file already says which column it is
                problems.append(f"{reading.problem}; {_fix_line(guess, column)}")
                guessed.add(guess)
            continue
        if reading.field is not None and reading.field not in known:
            notes.append(
                f"column {column!r} names the field {reading.field}, which is not sent in this "
                "run; it is kept as your own column"
            )
            continue
        if reading.field is None or reading.field in mapped:
            continue
        claimed.setdefault(reading.field, []).append(column)
        if reading.note:
            notes.append(reading.note)
    return claimed, notes


def _by_normal_form(column: str, columns: Sequence[str]) -> str | None:
    """A job file's column name matched loosely, when exactly one header fits."""
    wanted = normal_form(column)
    hits = [c for c in columns if normal_form(c) == wanted]
    return hits[0] if len(hits) == 1 else None
