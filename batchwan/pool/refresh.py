"""Keep results fresh during a run at a cost bounded by what changed since the last refresh.

The loop thread copies only the entries written since the last refresh (the ledger names
them in ``Ledger.changed``) and rebuilds only their rows; the file writing happens on a
worker thread. Copying every entry and rebuilding every row on each refresh cost the loop
time in proportion to the whole sheet, every two seconds.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from batchwan.store.ledger import Ledger
from batchwan.store.records import Snapshot
from batchwan.values import RowRecord, Status


@dataclass(frozen=True)
class RecordsAt(Snapshot):
    """A snapshot whose rows were already built: ``records`` hands them out."""

    built: list[RowRecord] = field(default_factory=list)

    def records(self) -> list[RowRecord]:
        """The rows as built at the instant of the snapshot, in sheet order."""
        return list(self.built)


class FreshRecords:
    """The ledger's rows as results show them, brought up to date by what changed.

    ``take`` runs on the loop and only copies; ``current`` runs on a worker thread and only
    rebuilds rows. They must take turns (the refresh awaits one before calling the other).
    """

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._base: Snapshot | None = None
        self._meta: dict[str, str] = {}
        self._rows: list[RowRecord] = []
        self._where: dict[str, list[int]] = {}  # row key -> indexes of the rows it decides
        self._stale: set[str] | None = None  # keys whose rows need building; None: every row

    def take(self) -> bool:
        """Copy what the ledger wrote since the last call (on the loop: nothing else runs).

        False when nothing was written since: the results on disk are still true.
        """
        ledger = self._ledger
        changed, ledger.changed = ledger.changed, set()
        self._meta = dict(ledger.meta)
        if self._base is None:
            self._base = ledger.snapshot()
            return True
        if not changed:
            return False
        known = [key for key in changed if key in ledger.entries]
        self._base.entries.update((key, copy.copy(ledger.entries[key])) for key in known)
        if self._stale is not None:
            self._stale.update(known)
        return True

    def current(self) -> Snapshot:
        """The snapshot as of the last ``take``, with its rows built (off the loop)."""
        base = self._base
        if base is None:
            raise RuntimeError("take() first")
        if self._stale is None:
            self._rows = base.records()
            for index, row in enumerate(base.sheet_rows):
                if row.status is Status.PENDING:
                    self._where.setdefault(row.key, []).append(index)
        elif self._stale:
            indexes = [i for key in self._stale for i in self._where.get(key, ())]
            rows = [base.sheet_rows[i] for i in indexes]
            part = Snapshot(base.run_dir, base.meta, rows, base.entries, base.notes)
            for index, record in zip(indexes, part.records(), strict=True):
                self._rows[index] = record
        self._stale = set()
        return RecordsAt(
            base.run_dir, self._meta, base.sheet_rows, base.entries, base.notes, list(self._rows)
        )
