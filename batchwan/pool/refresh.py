"""Keep results fresh during a run at a cost bounded by what changed since the last refresh.

The loop copies only the entries written since the last refresh (the ledger names them in
``Store.take_changed``) and rebuilds only their rows and their lines of results.csv. Rows are built
on the loop in short slices rather than on a worker thread: a thread busy in Python for a second
holds the GIL against the loop, and every socket call of the loop then waits for it (the
convoy effect), which cost a 40,000-row run about ten seconds at its first refresh. Only the
file writes (and the summary's sums) go to a worker thread.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from batchwan.atomic import atomic_writer
from batchwan.outputs.results import (
    RESULTS_FILE,
    own_columns,
    request_columns_of,
    results_lines,
    run_summary,
    write_summary,
)
from batchwan.store.base import Store
from batchwan.store.records import Snapshot
from batchwan.store.schema import iso_utc, now_utc
from batchwan.values import RowRecord, Status

#: Rows built between two yields to the loop: a few milliseconds of work.
SLICE = 500


@dataclass(frozen=True)
class RecordsAt(Snapshot):
    """A snapshot whose rows were already built: ``records`` hands them out."""

    built: list[RowRecord] = field(default_factory=list)

    def records(self) -> list[RowRecord]:
        """The rows as built at the instant of the snapshot, in sheet order."""
        return list(self.built)


class FreshRecords:
    """The ledger's rows as results show them, brought up to date by what changed.

    ``take`` copies what changed; ``build`` rebuilds those rows; ``write`` writes the files.
    All three run on the loop, one refresh at a time. At the run's end, ``settle`` hands the
    rows and results.csv's text to the final outputs.
    """

    def __init__(self, ledger: Store) -> None:
        self._ledger = ledger
        self._base: Snapshot | None = None
        self._meta: dict[str, str] = {}
        self._rows: list[RowRecord] = []
        self._lines: list[str] = []  # results.csv line of each row
        self._header = ""
        self._columns: list[str] = []
        self._request_columns: list[str] = []
        self._where: dict[str, list[int]] = {}  # row key -> indexes of the rows it decides
        self._stale: set[str] | None = None  # keys whose rows need building; None: every row
        # Held while a refresh replaces the files on its thread; once ``settle`` has set
        # ``_settled``, no refresh writes again: the run's final outputs are the last word.
        self._writing = threading.Lock()
        self._settled = False

    def take(self) -> bool:
        """Copy what the ledger wrote since the last call; False when it wrote nothing."""
        ledger = self._ledger
        changed = ledger.take_changed()
        self._meta = dict(ledger.meta)
        if self._base is None or changed is None:  # first time, or the store cannot say
            self._base = ledger.snapshot()
            self._stale = None
            return True
        if not changed:
            return False
        known = [key for key in changed if key in self._base.entries]
        self._base.entries.update((key, ledger.entry(key)) for key in known)
        if self._stale is not None:
            self._stale.update(known)
        return True

    async def build(self) -> Snapshot:
        """Rebuild the rows that changed (every row the first time), yielding between slices."""
        for _ in self._steps():
            await asyncio.sleep(0)
        return self._built()

    def settle(self) -> tuple[Snapshot, str] | None:
        """Every row up to date now, in one go (the pool is done), and results.csv's text;
        None when no refresh has built them all yet (a short run): building them here would
        save nothing. No refresh writes after this.

        The end of a run writes its outputs from these: rows a refresh already built are not
        built a second time, nor their lines rendered again.
        """
        with self._writing:  # a refresh still writing on its thread finishes first
            self._settled = True
        if self._base is None or self._stale is None:
            return None
        self.take()
        for _ in self._steps():
            pass
        return self._built(), self._text()

    async def write(self) -> None:
        """Build what changed, then replace results.csv and summary.json (on a worker thread)."""
        snapshot = await self.build()
        records = snapshot.records()
        meta = {**self._meta, "updated_at": iso_utc(now_utc()) or ""}
        await asyncio.to_thread(self._write_files, snapshot, self._text(), records, meta)

    def _write_files(
        self, snapshot: Snapshot, text: str, records: list[RowRecord], meta: dict[str, str]
    ) -> None:
        # A refresh cancelled at the end of the run may still be here on its thread: it must
        # not put its older results.csv over the final one.
        with self._writing:
            if self._settled:
                return
            with atomic_writer(snapshot.run_dir / RESULTS_FILE, newline="") as handle:
                handle.write(text)
            summary = run_summary(records, meta, snapshot.run_dir, snapshot.committed_cost())
            write_summary(snapshot.run_dir, summary)

    def _text(self) -> str:
        return self._header + "".join(self._lines)

    def _built(self) -> Snapshot:
        base = self._base
        if base is None:
            raise RuntimeError("take() first")
        return RecordsAt(
            base.run_dir, self._meta, base.sheet_rows, base.entries, base.notes, list(self._rows)
        )

    def _steps(self) -> Iterator[None]:
        """Rebuild what is stale a slice at a time; the caller may yield to the loop after each.
        Cut off between two slices, what is left stays stale for the next call."""
        base = self._base
        if base is None:
            raise RuntimeError("take() first")
        if self._stale is None:
            yield from self._build_all(base)
        elif self._stale:
            indexes = sorted({i for key in self._stale for i in self._where.get(key, ())})
            for start in range(0, len(indexes), SLICE):
                self._rebuild(base, indexes[start : start + SLICE])
                yield
        self._stale = set()

    def _build_all(self, base: Snapshot) -> Iterator[None]:
        rows = base.sheet_rows
        self._rows, self._lines, self._where = [], [], {}
        for start in range(0, len(rows), SLICE):
            part = Snapshot(base.run_dir, base.meta, rows[start : start + SLICE], base.entries,
                            base.notes)  # fmt: skip
            self._rows.extend(part.records())
            yield
        for index, row in enumerate(rows):
            if row.status is Status.PENDING:
                self._where.setdefault(row.key, []).append(index)
        # The columns of the whole sheet, found once: each row's line then has them all.
        self._columns = own_columns(self._rows, json.loads(self._meta.get("columns", "[]")))
        # The request's columns of the whole sheet too: every line is rendered under one header.
        self._request_columns = request_columns_of(self._rows)
        self._header, _ = results_lines([], self._columns, self._request_columns)
        for start in range(0, len(self._rows), SLICE):
            self._lines.extend(self._render(self._rows[start : start + SLICE]))
            yield

    def _rebuild(self, base: Snapshot, indexes: list[int]) -> None:
        rows = [base.sheet_rows[i] for i in indexes]
        part = Snapshot(base.run_dir, base.meta, rows, base.entries, base.notes).records()
        for index, record, line in zip(indexes, part, self._render(part), strict=True):
            self._rows[index] = record
            self._lines[index] = line

    def _render(self, records: list[RowRecord]) -> list[str]:
        return results_lines(records, self._columns, self._request_columns)[1]
