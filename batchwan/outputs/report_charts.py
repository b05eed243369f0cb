"""Charts for report.html as inline SVG, drawn in Python so the page needs no script library.

Every chart is a ``viewBox``-scaled ``<svg>`` that stretches to its column; every text in it is
escaped, because labels can come from the sheet or the provider.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from batchwan.outputs.statusview import format_duration

WIDTH = 640
INK = "#57606a"  # axis labels
GRID = "#d8dee4"
FONT = 12


@dataclass(frozen=True)
class Bar:
    """One bar of a bar chart."""

    label: str
    value: float
    colour: str
    note: str = ""  # shown on hover, e.g. the full text of a cut label


@dataclass(frozen=True)
class Series:
    """One line of a line chart: the times (seconds from the start) at which events happened."""

    label: str
    times: Sequence[float]
    colour: str


def _svg(height: int, label: str, body: list[str]) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(label)}</title>{''.join(body)}</svg>"
    )


def _text(x: float, y: float, text: str, *, anchor: str = "start", fill: str = INK) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{fill}" '
        f'font-size="{FONT}">{escape(text)}</text>'
    )


def empty_chart(label: str, message: str) -> str:
    """A placeholder of chart size saying why there is nothing to draw yet."""
    return _svg(60, label, [_text(WIDTH / 2, 34, message, anchor="middle")])


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def bar_chart(
    bars: Sequence[Bar], *, label: str, label_chars: int = 28, empty: str = "Nothing to show yet"
) -> str:
    """Horizontal bars, one per item, with the value at the end of each; ``empty`` says why
    there are none."""
    if not bars:
        return empty_chart(label, empty)
    row_h, label_w, value_w = 26, 8 * min(label_chars, 40) + 8, 64
    area = WIDTH - label_w - value_w
    top = max(b.value for b in bars) or 1
    body: list[str] = []
    for i, bar in enumerate(bars):
        y = i * row_h + 4
        length = max(bar.value / top * area, 1.5 if bar.value else 0)
        hover = bar.note or bar.label
        body.append(
            f"<g><title>{escape(hover)}: {bar.value:,g}</title>"
            + _text(label_w - 8, y + 15, _cut(bar.label, label_chars), anchor="end", fill="#24292f")
            + f'<rect x="{label_w}" y="{y + 3}" width="{length:.1f}" height="{row_h - 10}" '
            f'rx="3" fill="{escape(bar.colour)}"/>'
            + _text(label_w + length + 6, y + 15, f"{bar.value:,g}")
            + "</g>"
        )
    return _svg(len(bars) * row_h + 8, label, body)


_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400)


def bin_width(low: float, high: float, most: int = 20) -> float:
    """The smallest round bin width (1 s, 2 s, 5 s ... 15 min, 1 h ...) giving at most ``most``
    bins between ``low`` and ``high``."""
    span = max(high - low, 0.0)
    for step in _STEPS:
        if span / step < most:
            return float(step)
    return float(math.ceil(span / most))


def histogram(
    values: Sequence[float],
    *,
    label: str,
    colour: str,
    markers: Sequence[tuple[str, float | None]] = (),
) -> str:
    """A histogram of durations in seconds, with dashed lines at the given markers (median...)."""
    if not values:
        return empty_chart(label, "No finished tasks yet")
    step = bin_width(min(values), max(values))
    start = math.floor(min(values) / step) * step
    counts = [0] * (int((max(values) - start) // step) + 1)
    for v in values:
        counts[min(int((v - start) // step), len(counts) - 1)] += 1
    left, right, top, bottom, height = 40, 12, 26, 28, 220
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    peak = max(counts)
    col_w = plot_w / len(counts)
    body = _y_axis(left, WIDTH - right, top, plot_h, peak)
    for i, n in enumerate(counts):
        h = n / peak * plot_h
        low = start + i * step
        body.append(
            f'<rect x="{left + i * col_w + 1:.1f}" y="{top + plot_h - h:.1f}" '
            f'width="{max(col_w - 2, 1):.1f}" height="{h:.1f}" fill="{colour}">'
            f"<title>{escape(format_duration(low))} to {escape(format_duration(low + step))}"
            f": {n}</title></rect>"
        )
    every = max(1, math.ceil((len(counts) + 1) / 8))
    for i in range(0, len(counts) + 1, every):
        body.append(_tick(left + i * col_w, height - 10, format_duration(start + i * step)))
    end = start + len(counts) * step
    # Markers are told apart by dash pattern, named in a legend above the plot: their labels
    # would overlap when, say, median and p90 lie close together.
    legend_x = float(left)
    for (name, at), dashes in zip(markers, ("5 3", "1.5 2.5", "8 2 2 2"), strict=False):
        if at is None:
            continue
        x = left + (at - start) / (end - start) * plot_w
        body.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + plot_h}" '
            f'stroke="#24292f" stroke-width="1.5" stroke-dasharray="{dashes}"/>'
            f'<line x1="{legend_x:.1f}" x2="{legend_x + 22:.1f}" y1="{top - 12}" y2="{top - 12}" '
            f'stroke="#24292f" stroke-width="1.5" stroke-dasharray="{dashes}"/>'
        )
        text = f"{name} {format_duration(at)}"
        body.append(_text(legend_x + 27, top - 8, text, fill="#24292f"))
        legend_x += 40 + 7 * len(text)
    return _svg(height, label, body)


def _tick(x: float, y: float, text: str) -> str:
    # A label centred on the last tick would run off the drawing: end it at the tick instead.
    return _text(x, y, text, anchor="end" if x > WIDTH - 40 else "middle")


def _y_axis(left: float, right: float, top: float, plot_h: float, peak: float) -> list[str]:
    body: list[str] = []
    # Counts are whole: the middle line sits at a whole number, not at 6.5 of 13.
    for value in sorted({0, math.ceil(peak / 2), peak}):
        y = top + plot_h - value / peak * plot_h
        body.append(
            f'<line x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
            + _text(left - 6, y + 4, f"{value:,.0f}", anchor="end")
        )
    return body


def cumulative_chart(
    series: Sequence[Series], *, label: str, span: float, points: int = 240
) -> str:
    """Running totals over time, one stepped line per series; long series are sampled at
    ``points`` instants so the drawing stays small for thousands of events."""
    if not any(s.times for s in series):
        return empty_chart(label, "No finished tasks yet")
    span = max(span, max(max(s.times) for s in series if s.times), 1.0)
    left, right, top, bottom, height = 40, 12, 26, 28, 220
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    peak = max(len(s.times) for s in series)
    body = _y_axis(left, WIDTH - right, top, plot_h, peak)
    instants = [span * i / points for i in range(points + 1)]
    legend_x = left + 8.0
    for s in series:
        if not s.times:
            continue
        ordered = sorted(s.times)
        coords = []
        for t in instants:
            y = top + plot_h - bisect_right(ordered, t) / peak * plot_h
            coords.append(f"{left + t / span * plot_w:.1f},{y:.1f}")
        body.append(
            f'<polyline fill="none" stroke="{s.colour}" stroke-width="2" '
            f'points="{" ".join(coords)}"/>'
        )
        body.append(
            f'<rect x="{legend_x:.1f}" y="{top - 18}" width="10" height="10" rx="2" '
            f'fill="{s.colour}"/>' + _text(legend_x + 14, top - 9, f"{s.label} ({len(ordered):,})")
        )
        legend_x += 24 + 7 * (len(s.label) + len(f"{len(ordered):,}") + 3)
    for i in range(5):
        at = span * i / 4
        body.append(_tick(left + at / span * plot_w, height - 10, format_duration(at)))
    return _svg(height, label, body)
