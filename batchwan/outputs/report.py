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
import io
import json
import os
import re
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from PIL import Image, ImageOps

from batchwan import __version__
from batchwan.atomic import write_text_atomic
from batchwan.outputs.report_charts import Bar, Series, bar_chart, cumulative_chart, histogram
from batchwan.outputs.report_page import SCRIPT, STYLE
from batchwan.outputs.statusview import (
    STATUS_COLOURS,
    Headline,
    format_duration,
    format_money,
    format_when,
    headline,
    load_run,
    render_seconds,
    resolution_order,
)
from batchwan.values import RowRecord, Status

REPORT_FILE = "report.html"

#: Thumbnails of all rows together may take this much of the page; past it, rows show no preview.
THUMBNAIL_BUDGET = 2_500_000

# --- errors grouped by what they have in common ------------------------------------------------

_ROW_PREFIX = re.compile(r"^\s*row \d+:\s*", re.IGNORECASE)
_URL = re.compile(r"\b(?:https?|s3|gs|file)://\S+", re.IGNORECASE)
_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I)
# Task ids, trace ids, hashes: long tokens that mix letters and digits.
_TOKEN = re.compile(r"\b(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[\w-]{12,}\b")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
# The provider's error code leads its messages (3001 upstream failure, 3005 moderation): keep it.
_CODE = re.compile(r"^\s*(\d{3,4})\b")


def error_reason(error: str | None) -> str:
    """An error with what differs from row to row taken out (row numbers, ids, URLs, quoted
    names, numbers, but not a leading error code), so that errors of the same kind read the same
    and can be counted together."""
    text = _ROW_PREFIX.sub("", error or "")
    code = _CODE.match(text)
    if code:
        text = text[code.end() :]
    text = _URL.sub("<url>", text)
    text = _UUID.sub("<id>", text)
    text = _TOKEN.sub("<id>", text)
    text = _QUOTED.sub("'\u2026'", text)
    text = _NUMBER.sub("#", text)
    text = " ".join(text.split())
    if code:
        text = f"{code.group(1)} {text}".strip()
    return text[:200] or "(no reason given)"


_FAILED_STATES = frozenset({Status.FAILED, Status.UNKNOWN, Status.INVALID, Status.DUPLICATE})


@dataclass
class ErrorGroup:
    """Rows whose errors read the same once ids and numbers are taken out."""

    reason: str
    example: str  # the first row's error, in full
    positions: list[int] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)


def group_errors(records: Sequence[RowRecord]) -> list[ErrorGroup]:
    """The errors of failed, unknown, invalid and duplicate rows, grouped by reason, largest
    group first (ties in order of first appearance)."""
    groups: dict[str, ErrorGroup] = {}
    for r in records:
        if r.status not in _FAILED_STATES:
            continue
        reason = error_reason(r.error)
        group = groups.setdefault(reason, ErrorGroup(reason, r.error or ""))
        group.positions.append(r.position)
        group.statuses[r.status.value] += 1
    return sorted(groups.values(), key=lambda g: -len(g.positions))


# --- thumbnails ---------------------------------------------------------------------------------


class Thumbnails:
    """Small JPEG previews of local images, each distinct file encoded once, within a budget."""

    def __init__(
        self, distinct: int, budget: int = THUMBNAIL_BUDGET, base: Path | None = None
    ) -> None:
        # Many distinct images get smaller previews, so that a big sheet still fits the budget.
        self.size = 96 if distinct <= 600 else 64 if distinct <= 2000 else 48
        self.budget = budget
        self.uris: list[str] = []
        self._index: dict[str, int] = {}
        self._used = 0
        self.base = base  # the sheet's folder, for image paths written relative to it

    def index(self, image: str) -> int:
        """The position of the image's preview in ``uris``; -1 when there is none."""
        path = local_image(image, self.base)
        if path is None:
            return -1
        key = str(path)
        if key not in self._index:
            uri = self._encode(path) if self._used < self.budget else None
            self._index[key] = -1 if uri is None else len(self.uris)
            if uri is not None:
                self.uris.append(uri)
                self._used += len(uri)
        return self._index[key]

    def _encode(self, path: Path) -> str | None:
        try:
            with warnings.catch_warnings():
                # A preview is a courtesy: an odd image must not stop the report.
                warnings.simplefilter("ignore")
                with Image.open(path) as im:
                    im.draft("RGB", (self.size * 2, self.size * 2))
                    picture = ImageOps.exif_transpose(im)
                    picture.thumbnail((self.size, self.size))
                    flat = _on_white(picture)
                    out = io.BytesIO()
                    flat.save(out, "JPEG", quality=70, optimize=True)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            return None
        return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def _on_white(picture: Image.Image) -> Image.Image:
    """The picture as RGB, transparent parts laid on white rather than black."""
    if picture.mode in ("RGBA", "LA") or "transparency" in picture.info:
        rgba = picture.convert("RGBA")
        flat = Image.new("RGB", rgba.size, "white")
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return picture.convert("RGB")


def local_image(image: str, base: Path | None = None) -> Path | None:
    """The file a row's image names on this machine, or None for a URL, a data: placeholder, or
    a relative path with no folder to resolve it against."""
    if not image or image.startswith("data:") or re.match(r"^[A-Za-z][\w+.-]*://", image):
        return None
    if os.path.isabs(image):
        return Path(os.path.normpath(image))
    return Path(os.path.normpath(base / image)) if base is not None else None


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


def _extra_text(extra: Mapping[str, str]) -> str:
    text = " \u00b7 ".join(f"{k}: {v}" for k, v in extra.items() if str(v).strip())
    return text[:300]


def _row_payload(run_dir: Path, records: Sequence[RowRecord], thumbs: Thumbnails) -> list[Any]:
    rows: list[Any] = []
    for r in records:
        link = video_link(run_dir, r.video_file)
        render = (
            round((r.finished_at - r.submitted_at).total_seconds(), 1)
            if r.finished_at and r.submitted_at
            else None
        )
        local = local_image(r.image, thumbs.base)
        image_label = local.name if local is not None else r.image[:300]
        rows.append(
            [
                r.position,
                r.row_id,
                r.status.value,
                r.prompt,
                r.error or "",
                thumbs.index(r.image),
                link or "",
                render,
                image_label,
                r.video_url or "",
                _extra_text(r.extra),
                r.video_file if r.video_file and link is None else "",
            ]
        )
    return rows


def _status_css() -> str:
    return "".join(
        f".s-{s.value}{{background:{c.pale};color:{c.strong}}}" for s, c in STATUS_COLOURS.items()
    )


def _card(label: str, value: str, note: str = "") -> str:
    note_html = f'<div class="note">{html.escape(note)}</div>' if note else ""
    return (
        f'<div class="card"><div class="label">{html.escape(label)}</div>'
        f'<div class="value">{html.escape(value)}</div>{note_html}</div>'
    )


def _cards(head: Headline) -> str:
    ok = head.counts[Status.SUCCEEDED]
    attention = sum(head.counts[s] for s in (Status.FAILED, Status.UNKNOWN, Status.INVALID))
    attention += head.counts[Status.DUPLICATE]
    open_rows = head.counts[Status.RUNNING] + head.counts[Status.PENDING]
    share = f"{ok / head.rows:.0%} of rows" if head.rows else ""
    cost_note = f"estimated {format_money(head.estimated, head.currency)}"
    if head.max_cost is not None:
        cost_note += f", cap {format_money(head.max_cost, head.currency)}"
    resolutions = ", ".join(
        f"{k} {format_duration(v)}" for k, v in resolution_order(head.by_resolution) if v
    )
    return (
        '<section class="cards" aria-label="Headline figures">'
        + _card("Rows", f"{head.rows:,}", f"{open_rows:,} still open" if open_rows else "")
        + _card("Succeeded", f"{ok:,}", share)
        + _card("Need attention", f"{attention:,}", "failed, unknown, invalid, duplicate")
        + _card("Spent", format_money(head.spent, head.currency), cost_note)
        + _card("Video", format_duration(head.video_seconds), resolutions)
        + _card("Wall time", format_duration(head.wall_seconds))
        + _card("Render median", format_duration(head.render_median), "submit to finish")
        + _card("Render p90", format_duration(head.render_p90), "9 in 10 took at most")
        + "</section>"
    )


def _charts(records: Sequence[RowRecord], head: Headline, groups: Sequence[ErrorGroup]) -> str:
    status_bars = [Bar(s.value, n, STATUS_COLOURS[s].strong) for s, n in head.counts.items() if n]
    finished = [r for r in records if r.finished_at is not None and r.submitted_at is not None]
    start = min((r.submitted_at for r in records if r.submitted_at), default=None)
    series: list[Series] = []
    span = 0.0
    if start is not None:
        for status in (Status.SUCCEEDED, Status.FAILED):
            times = [
                (r.finished_at - start).total_seconds()
                for r in finished
                if r.status is status and r.finished_at
            ]
            series.append(Series(status.value, times, STATUS_COLOURS[status].strong))
            span = max([span, *times])
    error_bars = [
        Bar(g.reason, len(g.positions), STATUS_COLOURS[_main_status(g)].strong, g.example)
        for g in groups[:10]
    ]
    if len(groups) > 10:
        rest = sum(len(g.positions) for g in groups[10:])
        error_bars.append(Bar(f"{len(groups) - 10} other reasons", rest, "#8c959f"))
    panels = [
        ("Rows by status", bar_chart(status_bars, label="Rows by status", label_chars=12)),
        (
            "Render time of succeeded rows",
            histogram(
                render_seconds(records),
                label="Render time distribution",
                colour="#3b6ea8",
                markers=[("median", head.render_median), ("p90", head.render_p90)],
            ),
        ),
        (
            "Tasks finished over time",
            cumulative_chart(series, label="Tasks finished over time", span=span),
        ),
        (
            "Errors by reason",
            bar_chart(error_bars, label="Errors by reason", label_chars=40, empty="No errors"),
        ),
    ]
    return (
        '<section class="charts" id="charts">'
        + "".join(
            f'<div class="panel"><h3>{html.escape(title)}</h3>{svg}</div>' for title, svg in panels
        )
        + "</section>"
    )


def _main_status(group: ErrorGroup) -> Status:
    return Status(group.statuses.most_common(1)[0][0])


def _positions_text(positions: Sequence[int], shown: int = 12) -> str:
    text = ", ".join(str(p) for p in positions[:shown])
    return text + (f" \u2026 and {len(positions) - shown:,} more" if len(positions) > shown else "")


def _error_table(groups: Sequence[ErrorGroup]) -> str:
    if not groups:
        return '<p class="muted">No errors.</p>'
    body = "".join(
        "<tr>"
        f'<td class="num">{len(g.positions):,}</td>'
        f'<td class="reason">{html.escape(g.reason)}'
        f'<div class="example">e.g. {html.escape(g.example[:400])}</div></td>'
        "<td>"
        + " ".join(
            f'<span class="badge s-{html.escape(s)}">{html.escape(s)} {n:,}</span>'
            for s, n in g.statuses.most_common()
        )
        + f"</td><td>{html.escape(_positions_text(g.positions))}</td></tr>"
        for g in groups[:30]
    )
    more = (
        f'<p class="muted">{len(groups) - 30:,} more reasons; the row table lists every row.</p>'
        if len(groups) > 30
        else ""
    )
    return (
        '<table class="groups"><thead><tr><th class="num">Rows</th><th>Reason</th>'
        "<th>Status</th><th>Rows (sheet position)</th></tr></thead>"
        f"<tbody>{body}</tbody></table>{more}"
    )


def _chips(head: Headline) -> str:
    chips = [
        '<button type="button" class="chip" data-status="all" aria-pressed="true">'
        f'All<span class="n">{head.rows:,}</span></button>'
    ]
    chips.extend(
        f'<button type="button" class="chip" data-status="{s.value}" aria-pressed="false">'
        f'{s.value}<span class="n">{n:,}</span></button>'
        for s, n in head.counts.items()
        if n
    )
    return "".join(chips)


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


def render_report(
    run_dir: Path,
    records: Sequence[RowRecord],
    summary: Mapping[str, Any],
    *,
    meta: Mapping[str, str] | None = None,
    generated_at: datetime | None = None,
) -> str:
    """The whole report.html for a run, as text."""
    run_dir = Path(run_dir)
    head = headline(records, summary)
    groups = group_errors(records)
    sheet = (meta or {}).get("sheet")
    base = Path(sheet).parent if sheet else None
    distinct = len({local_image(r.image, base) for r in records} - {None})
    thumbs = Thumbnails(distinct, base=base)
    payload = {"rows": _row_payload(run_dir, records, thumbs), "thumbs": thumbs.uris}
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
        f"<style>{STYLE}{_status_css()}</style></head><body><main>"
        + _header(run_dir, meta or {}, when)
        + _cards(head)
        + "<h2>At a glance</h2>"
        + _charts(records, head, groups)
        + f'<h2 id="errors">Errors by reason</h2>{_error_table(groups)}'
        + '<h2 id="rows">Rows</h2>'
        '<div class="tools">'
        + _chips(head)
        + '<input type="search" id="search" placeholder="Search prompts, ids and errors"'
        ' aria-label="Search rows"></div>'
        '<div class="pager"><button type="button" class="prev">\u2039 Previous</button>'
        '<span class="pageinfo"></span><button type="button" class="next">Next \u203a</button>'
        "</div>"
        '<noscript><p class="muted">The row table needs JavaScript; results.csv in the run folder '
        "holds every row.</p></noscript>"
        '<table class="rowtable"><thead><tr><th class="num">Row</th><th>Image</th>'
        '<th>Id, prompt, error</th><th>Status</th><th class="num">Render</th><th>Video</th>'
        '</tr></thead><tbody id="rows-body"></tbody></table>'
        '<div class="pager"><button type="button" class="prev" data-scroll>\u2039 Previous'
        '</button><span class="pageinfo"></span><button type="button" class="next" data-scroll>'
        "Next \u203a</button></div>"
        f"<footer>Written by batchwan {html.escape(__version__)} from the run folder's state. "
        "Every row and column is in results.csv beside this page.</footer></main>"
        f'<script type="application/json" id="report-data">{_json_for_script(payload)}</script>'
        f"<script>{SCRIPT}</script></body></html>\n"
    )


# --- writing the page ---------------------------------------------------------------------------


def write_report(run_dir: Path) -> Path:
    """Write ``report.html`` into the run folder from its state alone; return its path."""
    run_dir = Path(run_dir)
    records, meta, summary = load_run(run_dir)
    path = run_dir / REPORT_FILE
    write_text_atomic(path, render_report(run_dir, records, summary, meta=meta))
    return path
