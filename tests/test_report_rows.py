"""The row table of report.html is bounded: a big run lists the rows that need attention, then
the last rows of the sheet; the figures above the table still count every row."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from recordfactory import record, summary

from batchwan.outputs.report import render_report
from batchwan.outputs.report_rows import ROW_TABLE_LIMIT, bound_note, table_rows
from batchwan.values import Status


def _payload_rows(page: str) -> list[Any]:
    found = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page)
    assert found is not None
    rows: list[Any] = json.loads(found.group(1))["rows"]
    return rows


def test_a_small_run_lists_every_row_without_a_note() -> None:
    """At or under the bound every row is listed, in sheet order, and nothing is said."""
    records = [record(i) for i in range(1, 11)]
    table = table_rows(records, limit=10, attention_limit=5)
    assert table.rows == records
    assert not table.bounded
    assert bound_note(table) == ""


def test_a_big_run_lists_attention_first_then_the_last_rows_in_sheet_order() -> None:
    """Over the bound: the first rows needing attention (up to their own cap), then the last
    rows of the sheet fill the table; the table keeps sheet order and lists no row twice."""
    records = [record(i, Status.FAILED if i % 10 == 0 else Status.SUCCEEDED) for i in range(1, 101)]
    records[4] = record(5, Status.PENDING, error="over the budget")  # pending with a reason
    table = table_rows(records, limit=12, attention_limit=4)
    positions = [r.position for r in table.rows]
    assert positions == [5, 10, 20, 30, 93, 94, 95, 96, 97, 98, 99, 100]
    assert (table.total, table.attention, table.latest) == (100, 4, 8)
    assert table.bounded


def test_attention_rows_among_the_last_are_not_counted_twice() -> None:
    """A failed row that is also among the last rows is listed once; the table is still full."""
    records = [record(i, Status.FAILED if i == 99 else Status.SUCCEEDED) for i in range(1, 101)]
    table = table_rows(records, limit=5, attention_limit=3)
    assert [r.position for r in table.rows] == [96, 97, 98, 99, 100]
    assert len({r.position for r in table.rows}) == 5


def test_the_note_says_how_many_rows_are_listed_and_where_the_rest_are() -> None:
    """The line above a bounded table gives both counts, why those rows, and results.csv."""
    records = [record(i, Status.INVALID if i < 3 else Status.SUCCEEDED) for i in range(1, 2001)]
    note = bound_note(table_rows(records, limit=1000, attention_limit=500))
    assert "lists 1,000 of the run's 2,000 rows" in note
    assert "the first 2 that need attention, then the last 998 of the sheet" in note
    assert "results.csv" in note


def test_a_report_of_a_big_run_is_bounded_and_its_figures_count_every_row(
    tmp_path: Path,
) -> None:
    """A run over the bound: the page carries ROW_TABLE_LIMIT rows (the failed ones among them,
    the last row of the sheet too) while the cards and chart count all of them."""
    total = ROW_TABLE_LIMIT + 600
    records = [
        record(i, Status.FAILED if i % 250 == 0 else Status.SUCCEEDED, error=None)
        for i in range(1, total + 1)
    ]
    page = render_report(tmp_path, records, summary(records))
    rows = _payload_rows(page)
    assert len(rows) == ROW_TABLE_LIMIT
    listed = [row[0] for row in rows]
    assert set(range(250, total + 1, 250)) <= set(listed)
    assert listed[-1] == total
    assert listed == sorted(listed)
    assert f"{total:,}" in page  # the Rows card counts every row
    assert f"lists {ROW_TABLE_LIMIT:,} of the run's {total:,} rows" in page


def test_a_report_at_the_bound_lists_every_row(tmp_path: Path) -> None:
    """Exactly ROW_TABLE_LIMIT rows: all listed, no note."""
    records = [record(i) for i in range(1, ROW_TABLE_LIMIT + 1)]
    page = render_report(tmp_path, records, summary(records))
    assert len(_payload_rows(page)) == ROW_TABLE_LIMIT
    assert 'id="rows-bound"' not in page
