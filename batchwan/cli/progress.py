"""Progress on a terminal: a tqdm bar of rows finished, with counts by status."""

from __future__ import annotations

from collections import Counter
from typing import Never

from tqdm import tqdm

from batchwan.events import Event, RowAccepted, RowFinished, RunStarted


class Progress:
    """Turns the run's events into one bar; does nothing when not on a terminal."""

    def __init__(self, *, enabled: bool) -> None:
        self._enabled = enabled
        self._counts: Counter[str] = Counter()
        self._bar: tqdm[Never] | None = None

    def update(self, event: Event) -> None:
        """Count one event."""
        if not self._enabled:
            return
        if isinstance(event, RunStarted):
            self._bar = tqdm(total=event.to_follow, unit="row", desc="finished")
            return
        if self._bar is None:
            return
        if isinstance(event, RowAccepted):
            self._counts["submitted"] += 1
        elif isinstance(event, RowFinished):
            self._counts[event.status.value] += 1
            self._bar.update(1)
        else:
            return
        self._bar.set_postfix(self._counts, refresh=False)

    def close(self) -> None:
        """Leave the bar as it ended."""
        if self._bar is not None:
            self._bar.close()
