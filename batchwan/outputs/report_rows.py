"""Which rows report.html lists: all of a small run; of a big one, those that need attention
first, then the last rows of the sheet, up to a bound.

A page listing 100,000 rows is neither readable nor cheap to write on every rerun; the
summary, the charts and the breakdowns above the table still count every row, and results.csv
beside the page holds every row.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

from batchwan.outputs.statusview import ATTENTION
from batchwan.values import RowRecord, Status

#: The most rows the table lists: 40 pages of 50, about 0.5 MB of page.
ROW_TABLE_LIMIT = 2000
#: Of those, the most that are listed because they need attention (the rest: the latest rows).
ATTENTION_LIMIT = ROW_TABLE_LIMIT // 2


@dataclass(frozen=True)
class TableRows:
    """The rows the table lists, in sheet order, and why those."""

    rows: list[RowRecord]
    total: int  # rows in the run
    attention: int  # of ``rows``, listed because they need attention
    latest: int  # of ``rows``, listed because they are the last of the sheet

    @property
    def bounded(self) -> bool:
        """Whether some rows of the run are left out of the table."""
        return len(self.rows) < self.total


def needs_attention(record: RowRecord) -> bool:
    """Invalid, duplicate, failed or unknown, or pending with a reason (budget, missing file)."""
    return record.status in ATTENTION or (record.status is Status.PENDING and bool(record.error))


def table_rows(
    records: Sequence[RowRecord],
    limit: int = ROW_TABLE_LIMIT,
    attention_limit: int = ATTENTION_LIMIT,
) -> TableRows:
    """Every row when there are at most ``limit``; else the first ``attention_limit`` rows that
    need attention, then the last rows of the sheet until ``limit``, in sheet order."""
    total = len(records)
    if total <= limit:
        return TableRows(list(records), total, 0, 0)
    chosen: set[int] = set()
    for index, record in enumerate(records):
        if len(chosen) >= attention_limit:
            break
        if needs_attention(record):
            chosen.add(index)
    attention = len(chosen)
    index = total - 1
    while len(chosen) < limit:  # limit < total: the loop always finds enough rows
        chosen.add(index)
        index -= 1
    picked = sorted(chosen)
    return TableRows([records[i] for i in picked], total, attention, len(picked) - attention)


def bound_note(table: TableRows) -> str:
    """The line above a bounded table saying what it lists and where every row is."""
    if not table.bounded:
        return ""
    parts = []
    if table.attention:
        parts.append(f"the first {table.attention:,} that need attention")
    parts.append(f"the last {table.latest:,} of the sheet")
    return (
        f'<p class="muted" id="rows-bound">This table lists {len(table.rows):,} of the run\'s '
        f"{table.total:,} rows: {html.escape(', then '.join(parts))}. The figures, charts and "
        "groups above count every row; results.csv beside this page holds every row.</p>"
    )
