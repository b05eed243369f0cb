"""Counts, seconds and cost broken down by the sheet's own columns, by model and by resolution.

summary.json, ``status``, the report and results.xlsx all show these same groups.
"""

from __future__ import annotations

import json
import operator
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from batchwan.errors import InputError
from batchwan.values import COMMITTED, RowRecord, Status

#: The meta entry of the record that keeps a run's --group-by, so status and report reuse it.
GROUP_BY_META = "group_by"


@dataclass
class Group:
    """The rows that share one value (or one combination of values)."""

    key: tuple[str, ...]
    rows: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {s.value: 0 for s in Status})
    video_seconds: int = 0
    estimated: float = 0.0
    committed: float = 0.0
    spent: float = 0.0
    renders: list[float] = field(default_factory=list)

    def add_kind(self, status: Status, duration: int, cost: float, rows: int) -> None:
        """Count in ``rows`` rows that share a status, a duration and a cost."""
        self.rows += rows
        self.counts[status.value] += rows
        if status is Status.INVALID or status is Status.DUPLICATE:
            return
        self.video_seconds += duration * rows
        amount = cost * rows
        self.estimated += amount
        if status in COMMITTED:
            self.committed += amount
        if status is Status.SUCCEEDED:
            self.spent += amount

    def add(self, r: RowRecord) -> None:
        """Count one row in."""
        # Each field read once: this runs for every row of a big sheet, once per breakdown.
        status = r.status
        self.rows += 1
        self.counts[status.value] += 1
        if status is Status.INVALID or status is Status.DUPLICATE:
            return
        cost = r.cost
        self.video_seconds += r.duration
        self.estimated += cost
        if status in COMMITTED:
            self.committed += cost
        if status is Status.SUCCEEDED:
            self.spent += cost
            submitted, finished = r.submitted_at, r.finished_at
            if submitted and finished:
                self.renders.append((finished - submitted).total_seconds())

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Group:
        """A group as ``as_json`` wrote it into summary.json (render times are not kept)."""
        key = data.get("key")
        found = data.get("cost")
        cost: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        group = cls(tuple(str(v) for v in key.values()) if isinstance(key, Mapping) else ())
        group.rows = int(data.get("rows") or 0)
        counts = data.get("counts")
        if isinstance(counts, Mapping):
            group.counts.update({str(k): int(v) for k, v in counts.items()})
        group.video_seconds = int(data.get("video_seconds") or 0)
        group.estimated = float(cost.get("estimated") or 0.0)
        group.committed = float(cost.get("committed") or 0.0)
        group.spent = float(cost.get("spent") or 0.0)
        return group

    def as_json(self, names: Sequence[str]) -> dict[str, Any]:
        """The group as summary.json and ``status --json`` write it."""
        return {
            "key": dict(zip(names, self.key, strict=True)),
            "rows": self.rows,
            "counts": dict(self.counts),
            "video_seconds": self.video_seconds,
            "cost": {
                "estimated": round(self.estimated, 2),
                "committed": round(self.committed, 2),
                "spent": round(self.spent, 2),
            },
            "render_seconds_median": statistics.median(self.renders) if self.renders else None,
        }


def _natural(key: tuple[str, ...]) -> tuple[tuple[int, float, str], ...]:
    """Numbers in numeric order (2 before 10), empty values last, then text."""
    parts = []
    for value in key:
        digits = value.rstrip("pP")  # 480P, 720P, 1080P
        try:
            parts.append((0, float(digits), value))
        except ValueError:
            parts.append((2 if value == "" else 1, 0.0, value))
    return tuple(parts)


def breakdown(
    records: Iterable[RowRecord], key_of: Callable[[RowRecord], tuple[str, ...]]
) -> list[Group]:
    """The records grouped by ``key_of``, in natural order of the keys."""
    groups: dict[tuple[str, ...], Group] = {}
    for r in records:
        key = key_of(r)
        group = groups.get(key)
        if group is None:
            group = groups[key] = Group(key)
        group.add(r)
    return [groups[k] for k in sorted(groups, key=_natural)]


def by_columns(records: Iterable[RowRecord], columns: Sequence[str]) -> list[Group]:
    """Groups of rows sharing the values of the sheet's own ``columns`` (blank cells: "")."""
    return breakdown(records, lambda r: tuple(r.extra.get(c, "").strip() for c in columns))


#: What the sums of a summary read of each row, read without a Python call per row.
_KIND = operator.attrgetter("model", "resolution", "status", "duration", "cost")
Kind = tuple[str, str, Status, int, float]


@dataclass(frozen=True)
class Tally:
    """How many rows of each kind (model, resolution, status, duration, cost) a run has, and
    the render times of its succeeded rows by (model, resolution): the sums of a summary and
    of its breakdowns by model and by resolution, from one pass over the rows."""

    kinds: Counter[Kind]
    renders: dict[tuple[str, str], list[float]]

    @classmethod
    def of(cls, records: Iterable[RowRecord]) -> Tally:
        """The tally of ``records`` (a big run has a few kinds among 100,000 rows)."""
        records = list(records)
        renders: dict[tuple[str, str], list[float]] = {}
        for r in records:
            if r.status is Status.SUCCEEDED and r.submitted_at and r.finished_at:
                seconds = (r.finished_at - r.submitted_at).total_seconds()
                renders.setdefault((r.model, r.resolution), []).append(seconds)
        return cls(Counter(map(_KIND, records)), renders)

    def groups(self, part: int) -> list[Group]:
        """The groups by model (``part`` 0) or by resolution (1), in natural order."""
        groups: dict[tuple[str, ...], Group] = {}
        for kind, rows in self.kinds.items():
            key = (kind[0] if part == 0 else kind[1],)
            group = groups.get(key) or groups.setdefault(key, Group(key))
            group.add_kind(kind[2], kind[3], kind[4], rows)
        for pair, seconds in self.renders.items():
            groups[(pair[part],)].renders.extend(seconds)
        return [groups[k] for k in sorted(groups, key=_natural)]


def by_model(records: Iterable[RowRecord], tally: Tally | None = None) -> list[Group]:
    """Groups of rows sent to the same model."""
    return (tally or Tally.of(records)).groups(0)


def by_resolution(records: Iterable[RowRecord], tally: Tally | None = None) -> list[Group]:
    """Groups of rows asking for the same resolution."""
    return (tally or Tally.of(records)).groups(1)


def stored_breakdowns(summary: Mapping[str, Any]) -> dict[str, list[Group]]:
    """summary.json's breakdowns as groups: ``by_model``, ``by_resolution``, ``by_group``."""
    found = summary.get("breakdowns")
    found = found if isinstance(found, Mapping) else {}
    groups = found.get("by_group")
    listed = {
        "by_model": found.get("by_model"),
        "by_resolution": found.get("by_resolution"),
        "by_group": groups.get("groups") if isinstance(groups, Mapping) else None,
    }
    return {
        name: [Group.from_json(g) for g in value if isinstance(g, Mapping)]
        if isinstance(value, list)
        else []
        for name, value in listed.items()
    }


def breakdowns(
    records: Sequence[RowRecord], group_by: Sequence[str], tally: Tally | None = None
) -> dict[str, Any]:
    """Every breakdown, as summary.json holds it (``tally``: the records', when made)."""
    columns = list(group_by)
    tally = tally or Tally.of(records)
    return {
        "by_model": [g.as_json(["model"]) for g in by_model(records, tally)],
        "by_resolution": [g.as_json(["resolution"]) for g in by_resolution(records, tally)],
        "by_group": {
            "columns": columns,
            "groups": [g.as_json(columns) for g in by_columns(records, columns)] if columns else [],
        },
    }


def parse_group_by(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """``campaign,owner`` (or a list of names) as a tuple of column names, blanks dropped."""
    if text is None:
        return ()
    parts = text.split(",") if isinstance(text, str) else [p for t in text for p in t.split(",")]
    return tuple(dict.fromkeys(p.strip() for p in parts if p.strip()))


def check_group_by(group_by: Sequence[str], columns: Sequence[str]) -> None:
    """Refuse a group-by column the sheet does not have, naming the ones it has."""
    missing = [name for name in group_by if name not in columns]
    if not missing:
        return
    have = ", ".join(columns) if columns else "none"
    noun = "column" if len(missing) == 1 else "columns"
    raise InputError(
        f"--group-by: no {noun} {', '.join(missing)} among the sheet's own columns (it has: {have})"
    )


def stored_group_by(meta: Mapping[str, str]) -> tuple[str, ...]:
    """The --group-by a run was started with, from the record's meta."""
    try:
        value = json.loads(meta.get(GROUP_BY_META) or "[]")
    except ValueError:
        return ()
    return tuple(str(v) for v in value) if isinstance(value, list) else ()
