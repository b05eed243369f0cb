"""report.html: one self-contained page that shows what a run produced.

The page opens offline, from disk or as a mail attachment: styles, script, charts (inline SVG)
and thumbnails (base64 JPEG) are all inside it, and a Content-Security-Policy forbids fetching
anything else. Only the videos stay outside, as relative links into ``videos/``, so the page
plays them when it sits in its run folder.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from batchwan import __version__
from batchwan.atomic import write_text_atomic
from batchwan.outputs.causes import ErrorGroup, error_reason, group_errors
from batchwan.outputs.groups import stored_group_by
from batchwan.outputs.report_page import SCRIPT, STYLE
from batchwan.outputs.report_rows import bound_note, table_rows
from batchwan.outputs.report_sections import cards, charts, chips, error_table, status_css
from batchwan.outputs.report_tables import group_tables, runs_table
from batchwan.outputs.results import own_columns
from batchwan.outputs.runview import RunView, view_of
from batchwan.outputs.statusview import (
    format_when,
    headline,
)
from batchwan.outputs.thumbs import THUMBNAIL_BUDGET, Thumbnails, local_image
from batchwan.safe_text import clean
from batchwan.values import RowRecord, Status

__all__ = [
    "THUMBNAIL_BUDGET",
    "ErrorGroup",
    "Thumbnails",
    "error_reason",
    "group_errors",
    "local_image",
    "render_report",
    "video_link",
    "write_report",
]

REPORT_FILE = "report.html"
#: The sheet's own columns shown as columns of the row table; further ones join the id line.
SHOWN_OWN_COLUMNS = 8
#: Statuses whose rows passed validation, so their image may be previewed.
_CHECKED = frozenset({Status.PENDING, Status.RUNNING, Status.SUCCEEDED, Status.FAILED,
                      Status.UNKNOWN})  # fmt: skip

# --- the parts of the page -------------------------------------------------------------------


def video_link(run_dir: Path, video_file: str | None) -> str | None:
    """The relative, URL-quoted link to a downloaded video inside the run folder; None when there
    is no file there, or the path would leave the folder."""
    if not video_file:
        return None
    parts = PurePosixPath(video_file.replace("\\", "/")).parts
    if not parts or parts[0] == "/" or ".." in parts or ":" in parts[0]:
        return None
    if not (run_dir.joinpath(*parts)).is_file():
        return None
    return "/".join(quote(p) for p in parts)


# --- the page -----------------------------------------------------------------------------------


def _json_for_script(value: Any) -> str:
    """JSON that cannot end its <script> element or open a comment: <, > and & are escaped."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _safe(text: object, limit: int | None = None) -> str:
    value = clean(text)
    return value if limit is None else value[:limit]


def _extra_text(extra: Mapping[str, str], skip: Sequence[str]) -> str:
    text = " \u00b7 ".join(
        f"{k}: {v}" for k, v in extra.items() if k not in skip and str(v).strip()
    )
    return _safe(text, 300)


def _row_payload(
    run_dir: Path, records: Sequence[RowRecord], thumbs: Thumbnails, shown: Sequence[str]
) -> list[Any]:
    """One array per row; the layout is the script's POS, ID, STATUS ... OWN constants."""
    rows: list[Any] = []
    for r in records:
        link = video_link(run_dir, r.video_file)
        render = (
            round((r.finished_at - r.submitted_at).total_seconds(), 1)
            if r.finished_at and r.submitted_at
            else None
        )
        rows.append(
            [
                r.position,
                _safe(r.row_id),
                r.status.value,
                _safe(r.prompt),
                _safe(r.error or ""),
                thumbs.index(r.image) if r.status in _CHECKED else -1,
                link or "",
                render,
                _safe(r.image, 300),
                _safe(r.video_url or ""),
                _extra_text(r.extra, shown),
                _safe(r.video_file) if r.video_file and link is None else "",
                _safe(r.model),
                r.resolution,
                r.duration,
                round(r.cost, 4) if r.status not in (Status.INVALID, Status.DUPLICATE) else None,
                [_safe(r.extra.get(name, ""), 200) for name in shown],
            ]
        )
    return rows


def _header(run_dir: Path, meta: Mapping[str, str], generated_at: datetime) -> str:
    facts = []
    if meta.get("sheet"):
        facts.append(f"sheet {Path(meta['sheet']).name}")
    if meta.get("model"):
        facts.append(f"model {meta['model']}")
    facts.append(f"report written {format_when(generated_at.isoformat())}")
    return (
        f'<header><h1>Run {html.escape(run_dir.name)}</h1><p class="sub">'
        + "".join(f"<span>{html.escape(f)}</span>" for f in facts)
        + "</p></header>"
    )


def _sort_header(label: str, key: str, cls: str = "") -> str:
    """A column header that sorts the rows when clicked (the script does the sorting)."""
    klass = f' class="{cls}"' if cls else ""
    return (
        f'<th{klass} data-sort="{html.escape(key)}" aria-sort="none">'
        f'<button type="button" class="sort">{html.escape(label)}</button></th>'
    )


def _row_table(shown: Sequence[str]) -> str:
    """The head of the row table; its body is drawn by the script, a page at a time."""
    own = "".join(_sort_header(clean(name)[:40], f"own:{i}") for i, name in enumerate(shown))
    return (
        '<table class="rowtable"><thead><tr>'
        + _sort_header("Row", "pos", "num")
        + "<th>Image</th><th>Id, prompt, error</th>"
        + _sort_header("Status", "status")
        + _sort_header("Model", "model")
        + _sort_header("Render", "render", "num")
        + _sort_header("Cost", "cost", "num")
        + own
        + '<th>Video</th></tr></thead><tbody id="rows-body"></tbody></table>'
    )


def _sort_menu(shown: Sequence[str]) -> str:
    """The same sorting as the headers, for narrow screens where the headers are hidden."""
    options = [("pos", "Sort: sheet order"), ("status", "Sort: status"), ("model", "Sort: model"),
               ("render", "Sort: render time"), ("cost", "Sort: cost")]  # fmt: skip
    options += [(f"own:{i}", f"Sort: {clean(name)[:40]}") for i, name in enumerate(shown)]
    return (
        '<select id="sort" aria-label="Sort rows">'
        + "".join(f'<option value="{html.escape(k)}">{html.escape(t)}</option>' for k, t in options)
        + "</select>"
    )


def _allowed_root(meta: Mapping[str, str]) -> tuple[Path | None, Path | None]:
    """The folder relative image paths start from, and the one images must lie inside."""
    sheet = meta.get("sheet")
    base = Path(sheet).parent if sheet else None
    root = meta.get("image_root")
    return base, (Path(root) if root else base)


def render_report(
    run_dir: Path,
    records: Sequence[RowRecord],
    summary: Mapping[str, Any],
    *,
    meta: Mapping[str, str] | None = None,
    generated_at: datetime | None = None,
    group_by: Sequence[str] | None = None,
    summary_counted: bool = False,
) -> str:
    """The whole report.html for a run, as text; ``group_by`` defaults to the run's own.

    ``summary_counted``: the summary's breakdowns were just worked out from ``records`` (not
    read from a summary.json that may be older), so the group tables take them as they are.
    """
    run_dir = Path(run_dir)
    meta = meta or {}
    head = headline(records, summary)
    groups = group_errors(records)
    base, root = _allowed_root(meta)
    table = table_rows(records)  # a big run lists the rows that matter, not all of them
    distinct = len({local_image(r.image, base) for r in table.rows} - {None})
    thumbs = Thumbnails(distinct, base=base, root=root)
    columns = stored_group_by(meta) if group_by is None else tuple(group_by)
    tables = group_tables(records, columns, summary if summary_counted else None)
    shown = own_columns(records, json.loads(meta.get("columns") or "[]"))[:SHOWN_OWN_COLUMNS]
    payload = {
        "rows": _row_payload(run_dir, table.rows, thumbs, shown),
        "thumbs": thumbs.uris,
        "columns": [clean(c) for c in shown],
    }
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode("ascii")
    policy = (
        "default-src 'none'; img-src data:; media-src 'self' file:; "
        f"style-src 'unsafe-inline'; script-src 'sha256-{digest}'; base-uri 'none'; "
        "form-action 'none'"
    )
    title = f"batchwan report: {run_dir.name}"
    when = generated_at or datetime.now(UTC).replace(microsecond=0)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
        '<meta name="referrer" content="no-referrer">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        f"<style>{STYLE}{status_css()}</style></head><body><main>"
        + _header(run_dir, meta, when)
        + cards(head)
        + "<h2>At a glance</h2>"
        + charts(records, head, groups)
        + f'<h2 id="errors">Errors by cause</h2>{error_table(groups)}'
        + f'<h2 id="groups">Cost and status by group</h2>{tables}'
        + f'<h2 id="runs">Runs</h2>{runs_table(summary.get("runs"))}'
        + '<h2 id="rows">Rows</h2>'
        + bound_note(table)
        + '<div class="tools">'
        + chips(head)
        + '<input type="search" id="search" placeholder="Search prompts, ids and errors"'
        ' aria-label="Search rows">' + _sort_menu(shown) + "</div>"
        '<div class="pager"><button type="button" class="prev">\u2039 Previous</button>'
        '<span class="pageinfo"></span><button type="button" class="next">Next \u203a</button>'
        "</div>"
        '<noscript><p class="muted">The row table needs JavaScript; results.csv in the run folder '
        "holds every row.</p></noscript>"
        + _row_table(shown)
        + '<div class="pager"><button type="button" class="prev" data-scroll>\u2039 Previous'
        '</button><span class="pageinfo"></span><button type="button" class="next" data-scroll>'
        "Next \u203a</button></div>"
        f"<footer>Written by batchwan {html.escape(__version__)} from the run folder's state. "
        "Every row and column is in results.csv beside this page.</footer></main>"
        f'<script type="application/json" id="report-data">{_json_for_script(payload)}</script>'
        f"<script>{SCRIPT}</script></body></html>\n"
    )


# --- writing the page ---------------------------------------------------------------------------


def write_report(source: Path | RunView, group_by: Sequence[str] | None = None) -> Path:
    """Write ``report.html`` into the run folder; return its path.

    ``source`` is the run folder (its state is read) or the rows a run just built for its
    other files. ``group_by`` defaults to the columns the run was started with.
    """
    counted = isinstance(source, RunView)  # its summary was counted from its records
    view = view_of(source, group_by)
    path = view.run_dir / REPORT_FILE
    page = render_report(
        view.run_dir, view.records, view.summary, meta=view.meta, group_by=group_by,
        summary_counted=counted,
    )  # fmt: skip
    write_text_atomic(path, page)
    return path
