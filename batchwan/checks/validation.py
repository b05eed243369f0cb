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
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchwan.catalog.rules import RULES
from batchwan.checks.imagesource import ImageChecker
from batchwan.errors import InputError
from batchwan.sheet.headers import canonical_field, match_headers
from batchwan.sheet.loader import Sheet, cell_text, collector_paused
from batchwan.values import API_FIELDS, CheckedRow, JobSpec, RowIssue, SheetRow, Status

log = logging.getLogger(__name__)

_REQUIRED = {
    "prompt": "is empty; write what the video should show",
    "image": "is empty; give an http(s) URL, a data: URI, or a path to a file beside the sheet",
}
_IMAGE_MAGIC = ((b"\x89PNG", "png"), (b"\xff\xd8\xff", "jpeg"), (b"BM", "bmp"))


@dataclass(frozen=True)
class Layout:
    """Which sheet column feeds each API field and the id; the rest are the user's own."""

    fields: dict[str, str]  # API field (or "id") -> the sheet's column name
    extra: tuple[str, ...]  # the user's own columns, in sheet order
    notes: tuple[str, ...] = ()  # headers read loosely, said once


def describe(issue: RowIssue) -> str:
    """A row problem as one line: ``row 7 (sheet line 9): duration: must be 5 or 10, got 7``."""
    return str(issue)


def layout(sheet: Sheet, spec: JobSpec) -> Layout:
    """Map API fields to columns as a person reads the headers (see ``sheet.headers``)."""
    defaulted = {*spec.defaults, *(canonical_field(k) or k for k in sheet.defaults)}
    readable = any(r.read_error is None for r in sheet.rows)  # else the rows say what is wrong
    match = match_headers(
        sheet.path, sheet.columns, known=(*API_FIELDS, "id", "take"), mapped=spec.columns,
        required=_REQUIRED if readable else (), defaulted=defaulted,
    )  # fmt: skip
    return Layout(match.fields, match.extra, match.notes)


def content_hash(request: dict[str, Any], image_digest: str | None, take: str = "") -> str:
    """sha256 of the request as canonical JSON, a local image's bytes standing in for its path.

    A ``take`` cell (a deliberate second take of the same request) is part of the hash.
    """
    canonical = dict(request)
    if take:
        canonical["take"] = take
    if image_digest is not None:
        canonical["image"] = f"sha256:{image_digest}"
    blob = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("ascii")).hexdigest()


class _RowChecker:
    """Checks rows of one sheet against one job spec."""

    def __init__(self, sheet: Sheet, spec: JobSpec, images: ImageChecker) -> None:
        self.layout = layout(sheet, spec)
        own = {canonical_field(k) or k: v for k, v in sheet.defaults.items()}
        merged = {**own, **spec.defaults}
        self.defaults = {k: cell_text(v).strip() for k, v in merged.items() if k in API_FIELDS}
        self.images = images
        self.model = spec.model

    def check(self, row: SheetRow) -> CheckedRow:
        """One row's request, or all its problems (ids and duplicates are settled by the caller)."""
        fields = self.layout.fields
        cells = row.cells
        extra = {c: cells.get(c, "") for c in self.layout.extra}
        row_id = cells.get(fields["id"], "").strip() if "id" in fields else ""
        if row.read_error is not None:
            issue = RowIssue(row.position, "", f"{row.read_error}; fix that line of the sheet")
            raw = hashlib.sha256(repr(sorted(cells.items())).encode("utf-8", "replace"))
            return _row(
                row,
                row_id,
                Status.INVALID,
                {},
                None,
                raw.hexdigest(),
                (issue,),
                (),
                extra,
                self.model,
            )
        request: dict[str, Any] = {}
        issues: list[RowIssue] = []
        for name in API_FIELDS:
            column = fields.get(name, name)
            text = cells.get(column, "").strip() if name in fields else ""
            if not text:
                text = self.defaults.get(name, "")
            if not text:
                if name in _REQUIRED:
                    issues.append(RowIssue(row.position, column, _REQUIRED[name]))
                continue
            if name == "image":
                request[name] = text
                continue
            value, problem = RULES[name](text)
            request[name] = text if problem else value
            if problem:
                issues.append(RowIssue(row.position, column, problem))
        path: Path | None = None
        digest: str | None = None
        notes: tuple[str, ...] = ()
        if "image" in request:
            verdict = self.images.check(request["image"])
            column = fields.get("image", "image")
            issues.extend(
                RowIssue(row.position, column, p.message, p.fixable) for p in verdict.problems
            )
            path, digest, notes = verdict.path, verdict.digest, verdict.notes
            if verdict.url is not None:  # a share link, sent as the file's direct link
                request["image"] = verdict.url
        status = Status.INVALID if issues else Status.PENDING
        take = cells.get(fields["take"], "").strip() if "take" in fields else ""
        chash = content_hash(request, digest, take)
        return _row(
            row, row_id, status, request, path, chash, tuple(issues), notes, extra, self.model
        )


def _row(
    row: SheetRow,
    row_id: str,
    status: Status,
    request: dict[str, Any],
    path: Path | None,
    chash: str,
    issues: tuple[RowIssue, ...],
    notes: tuple[str, ...],
    extra: dict[str, str],
    model: str,
) -> CheckedRow:
    key = row_id or chash[:16]
    return CheckedRow(
        row.position, key, key, status, request, path, chash, issues, notes, extra, bool(row_id),
        model=model, line=row.line,
    )  # fmt: skip


def check_rows(
    sheet: Sheet,
    spec: JobSpec,
    *,
    image_root: Path | None = None,
    fix_dir: Path | None = None,
) -> list[CheckedRow]:
    """Check every row: PENDING if valid, INVALID with all its problems, or DUPLICATE."""
    base = sheet.path.parent.resolve()
    root = image_root.resolve() if image_root is not None else base
    if fix_dir is not None:
        fix_dir.mkdir(parents=True, exist_ok=True)
    checker = _RowChecker(sheet, spec, ImageChecker(base, root, fix_dir, image_root is not None))
    with collector_paused():  # a million rows are millions of objects and no cycles
        checked = _check_each(sheet, checker)
    log.info("checked %d rows of %s", len(checked), sheet.path)
    return checked


def _check_each(sheet: Sheet, checker: _RowChecker) -> list[CheckedRow]:
    id_column = checker.layout.fields.get("id", "id")
    ids: dict[str, int] = {}
    contents: dict[str, int] = {}
    checked: list[CheckedRow] = []
    for sheet_row in sheet.rows:
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
        if row.status is Status.PENDING and not has_id:
            first = contents.get(row.content_hash)
            if first is not None:
                issue = RowIssue(
                    row.position,
                    "",
                    f"duplicate of row {first} (same prompt, image and settings); "
                    "give it an id to send it again",
                )
                row = _with(row, Status.DUPLICATE, (issue,))
        if row.status is Status.PENDING:
            contents.setdefault(row.content_hash, row.position)
        if row.issues and sheet_row.line is not None:
            located = tuple(dataclasses.replace(i, line=sheet_row.line) for i in row.issues)
            row = dataclasses.replace(row, issues=located)
        checked.append(row)
    return checked


def _with(row: CheckedRow, status: Status, issues: tuple[RowIssue, ...]) -> CheckedRow:
    return dataclasses.replace(row, status=status, issues=issues)


def build_body(row: CheckedRow) -> dict[str, Any]:
    """The exact JSON body to POST; a local image is read and sent as a base64 data: URI."""
    body = dict(row.request)
    # Always say the resolution and length that the cost estimate assumed, so the bill
    # matches the plan even where the sheet left them to the provider's defaults.
    body.setdefault("resolution", row.resolution)
    body.setdefault("duration", row.duration)
    if row.image_path is not None:
        try:
            data = row.image_path.read_bytes()
        except OSError as exc:
            raise InputError(
                f"row {row.position}: image: {row.image_path} can no longer be read "
                f"({exc.strerror or exc})"
            ) from None
        body["image"] = f"data:image/{image_subtype(data)};base64,{base64.b64encode(data).decode()}"
    return body


def image_subtype(data: bytes) -> str:
    """The ``data:image/<subtype>`` for an image's bytes, read from its first bytes."""
    for magic, subtype in _IMAGE_MAGIC:
        if data.startswith(magic):
            return subtype
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return "png"  # the fixer writes PNG; a file that is none of these never passed validation
