"""Turn every sheet row into a request ready to send, or into all of its problems, in one pass.

Nothing here raises for a bad row: a bad row is data (``RowIssue``). Only a sheet-wide fault
raises ``InputError``: a job file whose ``columns:`` names a column the sheet does not have, or a
header that is an API field in another case (``Duration``), which would otherwise go unsent.
A problem with no column (a duplicate, a line that could not be parsed) prints as ``row N: ...``.

A row's value for an API field is its non-empty cell, else the job file's default, else the
sheet's own ``defaults:``. Cells of API fields are stripped of surrounding spaces; the user's own
columns are carried unchanged. A row's key is its ``id`` when it has one, else the first 16 hex
digits of its content hash: the sha256 of the request as canonical JSON, with a local image's
bytes hashed in, so editing the image file changes the key.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchwan.catalog.registry import DEFAULT_MODEL, REGISTRY, find_model, unknown_model_message
from batchwan.catalog.rules import Rule, either, field_rules, shown, size_for_resolution
from batchwan.catalog.spec import Frame, ModelSpec, tier_of_size
from batchwan.checks.imagesource import ImageChecker, ImageVerdict
from batchwan.collector import collector_paused
from batchwan.errors import InputError
from batchwan.jsontext import canonical_json
from batchwan.sheet.headers import canonical_field, match_headers
from batchwan.sheet.loader import Sheet, SheetStream, cell_text
from batchwan.sheet.rows import has_readable_row
from batchwan.values import API_FIELDS, CheckedRow, JobSpec, RowIssue, SheetRow, Status

log = logging.getLogger(__name__)

_WHERE_IMAGE = "give an http(s) URL, a data: URI, or a path to a file beside the sheet"
_IMAGE_MAGIC = ((b"\x89PNG", "png"), (b"\xff\xd8\xff", "jpeg"), (b"BM", "bmp"))
_FRAMES = ("image", "last_frame")
#: The fields that ``_required`` may find missing on some model.
_REQUIRABLE = frozenset({"prompt", *_FRAMES})
_FROM_DEFAULTS = " (from the defaults; set this row's own cell)"
#: Columns read for the row itself rather than sent as they are.
ROW_COLUMNS = ("id", "model", "take")


@dataclass(frozen=True)
class Layout:
    """Which sheet column feeds each API field, the id and the model; the rest are the user's."""

    fields: dict[str, str]  # API field (or "id", "model") -> the sheet's column name
    extra: tuple[str, ...]  # the user's own columns, in sheet order
    notes: tuple[str, ...] = ()  # headers read loosely, said once


def describe(issue: RowIssue) -> str:
    """A row problem as one line: ``row 7 (sheet line 9): duration: must be 5 or 10, got 7``."""
    return str(issue)


def layout(sheet: Sheet | SheetStream, spec: JobSpec) -> Layout:
    """Map API fields to columns as a person reads the headers (see ``sheet.headers``)."""
    defaulted = {*spec.defaults, *(canonical_field(k) or k for k in sheet.defaults)}
    readable = has_readable_row(sheet)  # else the rows say what is wrong
    match = match_headers(
        sheet.path, sheet.columns, known=(*API_FIELDS, *ROW_COLUMNS), mapped=spec.columns,
        required=_required_columns(sheet, spec) if readable else (), defaulted=defaulted,
    )  # fmt: skip
    return Layout(match.fields, match.extra, match.notes)


def _required_columns(sheet: Sheet | SheetStream, spec: JobSpec) -> tuple[str, ...]:
    """The columns no row can do without: a prompt, and an image when every row's model needs
    one (a sheet with a model column may mix text-only rows in)."""
    model = find_model(spec.model)
    own_models = "model" in spec.columns or any(
        canonical_field(c) == "model" for c in sheet.columns
    )
    needs_image = model is not None and model.takes_image and not own_models
    return ("prompt", "image") if needs_image else ("prompt",)


def content_hash(
    request: dict[str, Any],
    image_digest: str | None,
    last_frame_digest: str | None = None,
    model: str = DEFAULT_MODEL,
    take: str = "",
) -> str:
    """sha256 of the request as canonical JSON, a local image's bytes standing in for its path.

    The model is hashed in unless it is the default one, whose rows keep the keys they had
    before rows could name their own model. A ``take`` cell (a deliberate second take of the
    same request) is part of the hash.
    """
    canonical = dict(request)
    if take:
        canonical["take"] = take
    if image_digest is not None:
        canonical["image"] = f"sha256:{image_digest}"
    if last_frame_digest is not None:
        canonical["last_frame"] = f"sha256:{last_frame_digest}"
    if model != DEFAULT_MODEL:
        canonical["model"] = model
    blob = canonical_json(canonical)
    return hashlib.sha256(blob.encode("ascii")).hexdigest()


def _takers(name: str) -> str:
    return ", ".join(spec.name for spec in REGISTRY.values() if name in spec.fields)


def not_taken(spec: ModelSpec, name: str) -> str:
    """Why a field is refused on a model that does not take it, and what to do instead."""
    if name == "image":
        return (
            f"{spec.name} is a text-to-video model and takes no image; leave image empty "
            "or choose an image-to-video model"
        )
    if name in ("audio", "audio_url"):
        return f"{spec.name} makes no sound and takes no {name}; leave {name} empty"
    if name == "size":
        return f"{spec.name} takes resolution ({either(spec.resolutions)}), not size"
    return f"{spec.name} takes no {name}; the models that do: {_takers(name)}"


class _Draft:
    """What one row's check has found so far."""

    # A plain class: one is made per row, and a dataclass's default factories cost more.
    __slots__ = ("frames", "issues", "notes", "position", "request")

    def __init__(
        self,
        position: int,
        request: dict[str, Any] | None = None,
        issues: list[RowIssue] | None = None,
    ) -> None:
        self.position = position
        self.request: dict[str, Any] = {} if request is None else request
        self.issues: list[RowIssue] = [] if issues is None else issues
        self.notes: list[str] = []
        self.frames: dict[str, ImageVerdict] = {}

    def problem(self, column: str, message: str, fixable: bool = False) -> None:
        self.issues.append(RowIssue(self.position, column, message, fixable))


# What ``_RowChecker._fields`` does with a field's text on one model.
_RULE, _FRAME, _TIER, _NOT_TAKEN = "rule", "frame", "tier", "not taken"
#: (field, its column or None, the column named in messages, its default text, the problem
#: when it is missing, the action, the rule, why the model refuses it, its doubtful values).
_Step = tuple[
    str, str | None, str, str, str | None, str, Rule | None, str | None, Mapping[str, str] | None
]


class _RowChecker:
    """Checks rows of one sheet against one job spec, each row against its own model."""

    def __init__(self, sheet: Sheet | SheetStream, spec: JobSpec, images: ImageChecker) -> None:
        self.layout = layout(sheet, spec)
        own = {canonical_field(k) or k: v for k, v in sheet.defaults.items()}
        merged = {**own, **spec.defaults}
        self.defaults = {k: cell_text(v).strip() for k, v in merged.items() if k in API_FIELDS}
        self.images = images
        self.model = spec.model
        self._steps_by_model: dict[str, list[_Step]] = {}
        # The columns read for every row, looked up once.
        self._id_column = self.layout.fields.get("id")
        self._model_column = self.layout.fields.get("model")
        self._take_column = self.layout.fields.get("take")
        # (field, the sheet's column or None, the column named in messages), once per sheet,
        # in the order problems are said. A field with no column and no default can only be
        # missing, which only the fields some model requires can be.
        self._fields_plan = [
            (name, self.layout.fields.get(name), self.layout.fields.get(name, name))
            for name in API_FIELDS
            if name in self.layout.fields or name in self.defaults or name in _REQUIRABLE
        ]

    def _column(self, name: str) -> str:
        return self.layout.fields.get(name, name)

    def _cell(self, cells: dict[str, str], name: str) -> str:
        column = self.layout.fields.get(name)
        return cells.get(column, "").strip() if column is not None else ""

    def check(self, row: SheetRow) -> CheckedRow:
        """One row's request, or all its problems (ids and duplicates are settled by the caller)."""
        cells = row.cells
        extra = {c: cells.get(c, "") for c in self.layout.extra}
        id_column, model_column = self._id_column, self._model_column
        row_id = cells.get(id_column, "").strip() if id_column is not None else ""
        model_text = (
            cells.get(model_column, "").strip() if model_column is not None else ""
        ) or self.model
        spec = find_model(model_text)
        if row.read_error is not None or spec is None:
            if row.read_error is not None:
                message, column = f"{row.read_error}; fix that line of the sheet", ""
            else:
                message, column = unknown_model_message(model_text), self._column("model")
            issue = RowIssue(row.position, column, message)
            raw = hashlib.sha256(repr(sorted(cells.items())).encode("utf-8", "replace"))
            request = {"prompt": self._cell(cells, "prompt")} if spec is None else {}
            return _row(
                row, row_id, Status.INVALID, _Draft(row.position, request, [issue]),
                raw.hexdigest(), extra, spec.name if spec else model_text,
            )  # fmt: skip
        draft = _Draft(row.position)
        self._fields(cells, spec, draft)
        self._frames(spec, draft)
        status = Status.INVALID if draft.issues else Status.PENDING
        frames = draft.frames
        first, last = frames.get("image"), frames.get("last_frame")
        take = cells.get(self._take_column, "").strip() if self._take_column is not None else ""
        chash = content_hash(
            draft.request, first.digest if first else None, last.digest if last else None,
            spec.name, take,
        )  # fmt: skip
        return _row(row, row_id, status, draft, chash, extra, spec.name)

    def _steps(self, spec: ModelSpec) -> list[_Step]:
        """What ``_fields`` does with each field on this model, worked out once per model."""
        steps = self._steps_by_model.get(spec.name)
        if steps is None:
            rules = field_rules(spec)
            steps = []
            for name, source, column in self._fields_plan:
                if name == "resolution" and spec.uses_size:
                    action, refusal = _TIER, None  # a tier on a text model: settled by its size
                elif name not in spec.fields:
                    action, refusal = _NOT_TAKEN, not_taken(spec, name)
                else:
                    action, refusal = (_FRAME if name in _FRAMES else _RULE), None
                doubts = spec.doubtful if name == "resolution" and action is _RULE else None
                steps.append(
                    (name, source, column, self.defaults.get(name, ""), _required(spec, name),
                     action, rules.get(name), refusal, doubts)
                )  # fmt: skip
            self._steps_by_model[spec.name] = steps
        return steps

    def _fields(self, cells: dict[str, str], spec: ModelSpec, draft: _Draft) -> None:
        resolution_text, resolution_default = "", False
        request = draft.request
        for name, source, column, default, missing, action, rule, refusal, doubts in self._steps(
            spec
        ):
            text = cells.get(source, "").strip() if source is not None else ""
            from_default = not text
            if from_default:
                text = default
                if not text:
                    if missing:
                        draft.problem(column, missing)
                    continue
            if action is _RULE:
                assert rule is not None  # every field a model takes but its frames has a rule
                value, problem = rule(text)
                request[name] = text if problem else value
                if problem:
                    draft.problem(column, problem + (_FROM_DEFAULTS if from_default else ""))
                elif doubts and value in doubts:
                    draft.notes.append(f"{name}: {doubts[value]}")
            elif action is _FRAME:
                request[name] = text
            elif action is _TIER:
                resolution_text, resolution_default = text, from_default
            elif from_default:
                draft.notes.append(f"{name}: the default {shown(text)} is not sent: {refusal}")
            else:
                draft.problem(column, str(refusal))
        if resolution_text:
            self._tier_as_size(spec, resolution_text, draft, resolution_default)
        if (
            draft.request.get("shot_type") == "multi"
            and draft.request.get("prompt_extend") is False
        ):
            draft.problem(
                self._column("shot_type"),
                "multi needs prompt_extend; set prompt_extend to true or shot_type to single",
            )

    def _tier_as_size(self, spec: ModelSpec, text: str, draft: _Draft, from_default: bool) -> None:
        """A text model given `720P`: that tier's landscape size, said as a note."""
        column = self._column("resolution")
        size, problem = size_for_resolution(spec, text)
        if problem:
            draft.problem(column, problem + (_FROM_DEFAULTS if from_default else ""))
            return
        given = draft.request.get("size")
        if given is None:
            draft.request["size"] = size
            tier = tier_of_size(size)
            draft.notes.append(
                f"resolution: {tier} on {spec.name} is sent as size {size} (the {tier} "
                "landscape size; write a size to choose another)"
            )
        elif isinstance(given, str) and tier_of_size(given) != tier_of_size(size):
            draft.problem(
                column,
                f"{shown(text)} and size {given} disagree; give only one of them",
            )

    def _frames(self, spec: ModelSpec, draft: _Draft) -> None:
        for name in _FRAMES:
            text = draft.request.get(name)
            if text is None or not isinstance(text, str):
                continue
            verdict = self.images.check(text)
            draft.frames[name] = verdict
            if verdict.url is not None:  # a share link, sent as the file's direct link
                draft.request[name] = verdict.url
            if verdict.problems:
                column = self._column(name)
                for p in verdict.problems:
                    draft.problem(column, p.message, p.fixable)
            if verdict.notes:
                # The image checker speaks of "image"; a last frame's fix is the last frame's.
                draft.notes.extend(
                    f"{name}: {note.removeprefix('image: ')}" if name != "image" else note
                    for note in verdict.notes
                )


def _required(spec: ModelSpec, name: str) -> str | None:
    if name == "prompt":
        return "is empty; write what the video should show"
    if name == "image" and spec.takes_image:
        return f"is empty; {_WHERE_IMAGE}"
    if name == "last_frame" and spec.last_frame is Frame.REQUIRED:
        return f"is empty; {spec.name} needs a last frame too: {_WHERE_IMAGE}"
    return None


def _row(
    row: SheetRow,
    row_id: str,
    status: Status,
    draft: _Draft,
    chash: str,
    extra: dict[str, str],
    model: str,
) -> CheckedRow:
    key = row_id or chash[:16]
    first, last = draft.frames.get("image"), draft.frames.get("last_frame")
    return CheckedRow(
        row.position, key, key, status, draft.request, first.path if first else None, chash,
        tuple(draft.issues), tuple(draft.notes), extra, bool(row_id), model=model, line=row.line,
        last_frame_path=last.path if last else None,
    )  # fmt: skip


def check_rows(
    sheet: Sheet,
    spec: JobSpec,
    *,
    image_root: Path | None = None,
    fix_dir: Path | None = None,
) -> list[CheckedRow]:
    """Check every row: PENDING if valid, INVALID with all its problems, or DUPLICATE.

    InputError when the job's own model (``--model``, ``model:``) is not a registered one: a
    typo there is a bad option, not a fault of any row.
    """
    rows = iter_checked(sheet, spec, image_root=image_root, fix_dir=fix_dir)
    with collector_paused():  # a million rows are millions of objects and no cycles
        checked = list(rows)
    log.info("checked %d rows of %s", len(checked), sheet.path)
    return checked


def iter_checked(
    sheet: Sheet | SheetStream,
    spec: JobSpec,
    *,
    image_root: Path | None = None,
    fix_dir: Path | None = None,
) -> Iterator[CheckedRow]:
    """``check_rows`` one row at a time, each checked as it is taken from the sheet.

    What can refuse the whole sheet (the job's model, its headers) is checked at once, before
    any row is taken. Only each id and content hash is kept, to find repeats.
    """
    if find_model(spec.model) is None:
        raise InputError(f"--model / model: {unknown_model_message(spec.model)}")
    base = sheet.path.parent.resolve()
    root = image_root.resolve() if image_root is not None else base
    if fix_dir is not None:
        fix_dir.mkdir(parents=True, exist_ok=True)
    checker = _RowChecker(sheet, spec, ImageChecker(base, root, fix_dir, image_root is not None))
    return _check_each(sheet.rows, checker)


def _check_each(rows: Iterable[SheetRow], checker: _RowChecker) -> Iterator[CheckedRow]:
    id_column = checker.layout.fields.get("id", "id")
    ids: dict[str, int] = {}
    # The first row of each content, by its hash's bytes: half the memory of its hex text.
    contents: dict[bytes, int] = {}
    for sheet_row in rows:
        row = checker.check(sheet_row)
        has_id = row.own_id
        if has_id and row.row_id in ids:
            issue = RowIssue(
                row.position,
                id_column,
                f"{row.row_id!r} is also the id of row {ids[row.row_id]}; give each row its own id",
            )
            row = _with(row, Status.INVALID, (*row.issues, issue))
        elif has_id:
            ids[row.row_id] = row.position
        if row.status is Status.PENDING:
            content = bytes.fromhex(row.content_hash)
            if not has_id and (first := contents.get(content)) is not None:
                issue = RowIssue(
                    row.position,
                    "",
                    f"duplicate of row {first} (same prompt, image and settings); "
                    "give it an id to send it again",
                )
                row = _with(row, Status.DUPLICATE, (issue,))
            else:
                contents.setdefault(content, row.position)
        if row.issues and sheet_row.line is not None:
            located = tuple(dataclasses.replace(i, line=sheet_row.line) for i in row.issues)
            row = dataclasses.replace(row, issues=located)
        yield row


def _with(row: CheckedRow, status: Status, issues: tuple[RowIssue, ...]) -> CheckedRow:
    return dataclasses.replace(row, status=status, issues=issues)


def build_body(row: CheckedRow) -> dict[str, Any]:
    """The exact JSON body to POST; local frames are read and sent as base64 data: URIs."""
    spec = find_model(row.model)
    if spec is None:
        raise InputError(f"row {row.position}: model: {unknown_model_message(row.model)}")
    body = dict(row.request)
    # Always say the resolution (or size) and length that the cost estimate assumed, so the
    # bill matches the plan even where the sheet left them to the provider's defaults.
    if spec.uses_size:
        body.setdefault("size", spec.default_size)
    else:
        body.setdefault("resolution", row.resolution)
    body.setdefault("duration", row.duration)
    for name, path in (("image", row.image_path), ("last_frame", row.last_frame_path)):
        if path is None:
            continue
        try:
            stat = path.stat()
            body[name] = _data_uri(path, stat.st_size, stat.st_mtime_ns, stat.st_ino)
        except OSError as exc:
            raise InputError(
                f"row {row.position}: {name}: {path} can no longer be read ({exc.strerror or exc})"
            ) from None
    return body


# Rows often share one frame: each file is read and encoded once, keyed by its path and identity
# (size, modification time, inode), so an edited file is read afresh. Few entries: each can be
# over 13 MB of text.
@functools.lru_cache(maxsize=4)
def _data_uri(path: Path, size: int, mtime_ns: int, inode: int) -> str:
    data = path.read_bytes()
    return f"data:image/{image_subtype(data)};base64,{base64.b64encode(data).decode()}"


def image_subtype(data: bytes) -> str:
    """The ``data:image/<subtype>`` for an image's bytes, read from its first bytes."""
    for magic, subtype in _IMAGE_MAGIC:
        if data.startswith(magic):
            return subtype
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return "png"  # the fixer writes PNG; a file that is none of these never passed validation
