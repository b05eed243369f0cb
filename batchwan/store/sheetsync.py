"""What recording the sheet as read now changes, worked out the same way for every store.

Pure: from the sheet's checked rows and the record's entries, the entries to write (new rows,
or pending rows whose cost or content changed), every row's stored values, the remarks made
while reading, and the warnings for rows changed under an id already sent. Each store then
writes only the values that differ from what it holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from batchwan.jsontext import plain_json
from batchwan.store.records import image_label, request_as_sent
from batchwan.store.schema import TaskEntry
from batchwan.values import CheckedRow, Status

#: The stored columns of one sheet row, in the order ``SheetSync.values`` gives them.
SHEET_COLUMNS = (
    "position", "key", "row_id", "status", "prompt", "image", "cost", "resolution", "duration",
    "error", "extra", "model", "request", "line",
)  # fmt: skip


@dataclass
class SheetSync:
    """The outcome of comparing the sheet with the record."""

    entries: dict[str, TaskEntry] = field(default_factory=dict)  # to write
    values: list[tuple[Any, ...]] = field(default_factory=list)  # every row, SHEET_COLUMNS
    notes: dict[int, str] = field(default_factory=dict)  # sheet position -> remark
    warnings: list[str] = field(default_factory=list)


def plan_sync(
    rows: Sequence[CheckedRow],
    costs: Sequence[float],
    entries: Mapping[str, TaskEntry],
    model: str,
) -> SheetSync:
    """Compare the sheet read now with the record's entries; nothing is written here."""
    out = SheetSync()
    for row, cost in zip(rows, costs, strict=True):
        note = "; ".join(row.notes) or None
        if row.status is Status.PENDING:
            entry = entries.get(row.key)
            if entry is None or (entry.status is Status.PENDING and not entry.sending):
                fresh = TaskEntry(
                    # Polls go to the path of the row's own model.
                    row.key, row.content_hash, Status.PENDING, row.model or model, cost,
                    row.resolution,
                    row.duration, attempts=entry.attempts if entry else 0,
                    prior_cost=entry.prior_cost if entry else 0.0,
                )  # fmt: skip
                if fresh != entry:
                    out.entries[row.key] = fresh
            elif entry.content_hash != row.content_hash:
                note = (
                    f"content changed since id {row.row_id} was sent as task "
                    f"{entry.task_id or '(unknown)'}; the earlier result is kept. "
                    "Give the changed row a new id to generate it"
                )
                out.warnings.append(f"row {row.position}: id: {note}")
        else:
            note = (
                "; ".join(  # "image: ..." says which cell to fix, and groups by cause
                    f"{i.column}: {i.message}" if i.column else i.message for i in row.issues
                )
                or note
            )
        if note:
            out.notes[row.position] = note
        image = image_label(row)
        out.values.append(
            (
                row.position, row.key, row.row_id, row.status.value,
                str(row.request.get("prompt", "")), image, cost, row.resolution,
                row.duration, note, plain_json(row.extra) if row.extra else "{}", row.model,
                plain_json(request_as_sent(row, image)), row.line,
            )
        )  # fmt: skip
    return out
