"""Progress on a terminal: a tqdm bar of rows finished, with counts by status."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from tqdm import tqdm

from batchwan.pool.runner import RunEvent
from batchwan.store.base import Store
from batchwan.values import CheckedRow, Status


class Progress:
    """Turns the runner's events into one bar; does nothing when not on a terminal."""

    def __init__(self, rows: Sequence[CheckedRow], ledger: Store, *, enabled: bool) -> None:
        to_follow = sum(
            1
            for row in rows
            if row.status is Status.PENDING
            and ledger.entry(row.key).status in (Status.PENDING, Status.RUNNING)
        )
        self._counts: Counter[str] = Counter()
        self._bar = tqdm(total=to_follow, unit="row", desc="finished") if enabled else None

    def update(self, event: RunEvent) -> None:
        """Count one event."""
        if self._bar is None:
            return
        if event.kind == "submitted":
            self._counts["submitted"] += 1
        elif event.kind == "finished" and event.status is not None:
            self._counts[event.status.value] += 1
            self._bar.update(1)
        else:
            return
        self._bar.set_postfix(self._counts, refresh=False)

    def close(self) -> None:
        """Leave the bar as it ended."""
        if self._bar is not None:
            self._bar.close()
