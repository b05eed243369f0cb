"""report.html as text: escaping, error grouping, thumbnails, video links, size, atomic write."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from recordfactory import HOSTILE, T0, image, make_run, mixed_run, record, summary, video

from batchwan.outputs.report import (
    Thumbnails,
    error_reason,
    group_errors,
    render_report,
    video_link,
    write_report,
)
from batchwan.outputs.report_charts import (
    Bar,
    Series,
    bar_chart,
    bin_width,
    cumulative_chart,
    histogram,
)
from batchwan.outputs.report_rows import ROW_TABLE_LIMIT
from batchwan.outputs.statusview import headline, percentile
from batchwan.values import Status

FIVE_MB = 5 * 1024 * 1024


def _payload(page: str) -> dict[str, list[Any]]:
    found = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page)
    assert found is not None
    data: dict[str, list[Any]] = json.loads(found.group(1))
    return data


def _sheet_in(folder: Path) -> dict[str, str]:
    """Run metadata naming a sheet in ``folder``, the folder its images must lie in."""
    return {"sheet": str(folder / "sheet.csv")}


def _scripts(page: str) -> list[str]:
    return re.findall(r"<script[^>]*>", page, flags=re.IGNORECASE)


def test_hostile_prompt_id_and_error_cannot_open_markup(tmp_path: Path) -> None:
    """Markup in a prompt, id, error or user column reaches the page only as text or escaped
    JSON: the page holds exactly its own two script elements and the values survive intact."""
    records = [
        record(1, prompt=HOSTILE, row_id="</script><b>x</b>", extra={"note": HOSTILE}),
        record(2, Status.FAILED, error=HOSTILE),
    ]
    page = render_report(tmp_path, records, summary(records))
    assert len(_scripts(page)) == 2
    assert "<img src=x" not in page
    assert "<!-- " not in page
    assert "&lt;/script&gt;&lt;script&gt;" in page  # the error table, rendered in Python
    rows = _payload(page)["rows"]
    assert rows[0][3] == HOSTILE
    assert rows[0][1] == "</script><b>x</b>"


def test_content_security_policy_allows_exactly_the_inline_script(tmp_path: Path) -> None:
    """The page forbids every fetch except its own script (by hash), data: images and local
    media, so even a slip in escaping could not run or load anything."""
    page = render_report(tmp_path, [record(1)], summary([record(1)]))
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert policy is not None
    script = re.search(r"<script>(.*)</script></body>", page, flags=re.DOTALL)
    assert script is not None
    digest = base64.b64encode(hashlib.sha256(script.group(1).encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in policy.group(1)
    assert "default-src 'none'" in policy.group(1)
    assert "img-src data:;" in policy.group(1)


def test_page_fetches_nothing_from_elsewhere(tmp_path: Path) -> None:
    """No stylesheet, script, font or image is linked from outside the page."""
    records = mixed_run(tmp_path / "run")
    page = render_report(tmp_path / "run", records, summary(records))
    assert not re.search(r"<(link|iframe|object|embed)\b", page)
    assert not re.search(r"<script[^>]+src=", page)
    assert "url(" not in page
    assert not re.search(r"""src=["']https?:""", page)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (
            "task 3c90c3cc-0d44-4b50-8888-8dd25736052a: not found after 5 polls",
            "task 9d1e2f3a-1b2c-4d5e-8f90-123456789abc: not found after 7 polls",
        ),
        (
            "row 7: duration: must be 5 or 10, got 7",
            "row 12: duration: must be 5 or 10, got 12",
        ),
        (
            "download failed: https://cdn.example/a/1.mp4 answered 403",
            "download failed: https://cdn.example/b/2.mp4 answered 404",
        ),
        ("image: file 'cat.png' not found", "image: file 'dog.png' not found"),
        (
            "3001 Task Execution Error trace abc123def456ghi789",
            "3001 Task Execution Error trace zzz999yyy888xxx777",
        ),
    ],
)
def test_similar_errors_read_the_same(first: str, second: str) -> None:
    """Errors that differ only by ids, numbers, URLs or quoted names share one reason."""
    assert error_reason(first) == error_reason(second)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("3001 Task Execution Error", "3005 Task Execution Error"),
        ("duration: must be 5 or 10", "resolution: must be 480P, 720P or 1080P"),
    ],
)
def test_different_errors_stay_apart(first: str, second: str) -> None:
    """Different provider codes and different messages are different reasons."""
    assert error_reason(first) != error_reason(second)


def test_error_reason_of_nothing() -> None:
    """A failed row without an error text still gets a reason a person can read."""
    assert error_reason(None) == "(no reason given)"
    assert error_reason("   ") == "(no reason given)"


def test_errors_grouped_by_reason_largest_first() -> None:
    """Groups hold the sheet positions and statuses of their rows, largest group first; running,
    pending and succeeded rows are not errors even with a remark."""
    records = [
        record(1, Status.FAILED, error="3005 Task Execution Error prompt violation"),
        record(2, Status.INVALID, error="row 2: duration: must be 5 or 10, got 7"),
        record(3, Status.INVALID, error="row 3: duration: must be 5 or 10, got 9"),
        record(4, Status.SUCCEEDED, error="download retried twice"),
        record(5, Status.PENDING, error="image fixed: resized to 2000x1125"),
        record(6, Status.UNKNOWN, error=None),
    ]
    groups = group_errors(records)
    assert [(g.reason, g.positions) for g in groups] == [
        ("duration: not an allowed value", [2, 3]),
        ("3005 Task Execution Error", [1]),
        ("(no reason given)", [6]),
    ]
    assert groups[0].statuses == {"invalid": 2}
    assert groups[0].example == "row 2: duration: must be 5 or 10, got 7"


@pytest.mark.parametrize(
    ("values", "fraction", "expected"),
    [
        ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.5, 5.5),
        ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9, 9.1),
        ([10, 1, 7, 3], 0.9, 9.1),
        ([42], 0.9, 42),
        ([60, 120], 0.0, 60),
        ([60, 120], 1.0, 120),
    ],
)
def test_percentile_interpolates_between_ranks(
    values: list[float], fraction: float, expected: float
) -> None:
    """Quantiles interpolate linearly between the closest ranks, order of input not mattering."""
    assert percentile(values, fraction) == pytest.approx(expected)


def test_percentile_of_nothing_is_none() -> None:
    """No finished rows means no render time, not zero."""
    assert percentile([], 0.9) is None


def test_headline_works_out_render_times_when_the_summary_has_none() -> None:
    """Without timings in the summary, median and p90 come from the succeeded rows' render
    times; failed rows do not count."""
    records = [
        record(
            i,
            submitted_at=T0,
            finished_at=T0 + timedelta(seconds=10 * i),
        )
        for i in range(1, 11)
    ]
    records.append(record(11, Status.FAILED, submitted_at=T0, finished_at=T0 + timedelta(hours=1)))
    head = headline(records, {})
    assert head.render_median == pytest.approx(55.0)
    assert head.render_p90 == pytest.approx(91.0)
    assert head.counts[Status.SUCCEEDED] == 10
    assert head.counts[Status.FAILED] == 1


def test_headline_prefers_the_summary_figures() -> None:
    """The summary's percentiles are shown as summary.json states them, null included."""
    records = [record(1), record(2)]
    head = headline(records, summary(records, median=None, p90=None))
    assert head.render_median is None
    assert head.render_p90 is None
    assert head.spent == 4.0


def test_each_distinct_image_is_embedded_once(tmp_path: Path) -> None:
    """Fifty rows sharing three pictures carry three thumbnails, each once, referred to by
    index from the rows."""
    pictures = [
        image(tmp_path / f"p{i}.png", colour=c) for i, c in enumerate(("red", "green", "blue"))
    ]
    records = [record(i, image=str(pictures[i % 3])) for i in range(1, 51)]
    page = render_report(tmp_path, records, summary(records), meta=_sheet_in(tmp_path))
    assert page.count("data:image/jpeg;base64,") == 3
    data = _payload(page)
    assert len(data["thumbs"]) == 3
    assert {row[5] for row in data["rows"]} == {0, 1, 2}


def test_thumbnails_are_small_jpegs(tmp_path: Path) -> None:
    """A preview fits in 96 px, is a JPEG, and a transparent PNG is laid on white."""
    clear = Image.new("RGBA", (800, 600), (255, 0, 0, 0))
    clear.save(tmp_path / "clear.png")
    thumbs = Thumbnails(distinct=1, root=tmp_path)
    assert thumbs.index(str(tmp_path / "clear.png")) == 0
    raw = base64.b64decode(thumbs.uris[0].split(",", 1)[1])
    (tmp_path / "t.jpg").write_bytes(raw)
    with Image.open(tmp_path / "t.jpg") as shown:
        assert shown.format == "JPEG"
        assert max(shown.size) == 96
        assert shown.convert("RGB").getpixel((10, 10)) == pytest.approx((255, 255, 255), abs=3)


def test_unreadable_or_remote_images_get_no_thumbnail(tmp_path: Path) -> None:
    """A broken file, a missing file, a URL or a data: placeholder shows no preview and does not
    stop the report."""
    (tmp_path / "broken.png").write_bytes(b"not a picture")
    thumbs = Thumbnails(distinct=2, root=tmp_path)
    assert thumbs.index(str(tmp_path / "broken.png")) == -1
    assert thumbs.index(str(tmp_path / "missing.png")) == -1
    assert thumbs.index("https://example.invalid/cat.png") == -1
    assert thumbs.index("data:image/png;base64,iVBORw0... (1234 characters)") == -1
    assert thumbs.uris == []


def test_relative_image_paths_resolve_against_the_sheet_folder(tmp_path: Path) -> None:
    """An image path written relative to the sheet is found beside the sheet named in the run's
    metadata."""
    image(tmp_path / "sheet" / "frames" / "a.png")
    records = [record(1, image="frames/a.png")]
    meta = {"sheet": str(tmp_path / "sheet" / "demo.csv")}
    page = render_report(tmp_path / "run", records, summary(records), meta=meta)
    assert page.count("data:image/jpeg;base64,") == 1
    assert render_report(tmp_path / "run", records, summary(records)).count("data:image") == 0


def test_empty_run_renders(tmp_path: Path) -> None:
    """A run with no rows yet still gives a whole page, with notes in place of charts."""
    page = render_report(tmp_path, [], {})
    assert page.rstrip().endswith("</html>")
    assert _payload(page) == {"rows": [], "thumbs": [], "columns": []}
    assert "Nothing to show yet" in page
    assert "No errors." in page


def test_thumbnails_stop_at_the_budget(tmp_path: Path) -> None:
    """Past the page's thumbnail budget, further images get no preview."""
    pictures = [image(tmp_path / f"p{i}.png", colour=f"#{i:02x}8040") for i in range(5)]
    thumbs = Thumbnails(distinct=5, budget=1, root=tmp_path)
    assert [thumbs.index(str(p)) for p in pictures] == [0, -1, -1, -1, -1]


def test_video_link_is_relative_quoted_and_only_for_files_present(tmp_path: Path) -> None:
    """A downloaded video is linked relative to the page, with its name URL-quoted; a missing
    file or a path leaving the run folder gets no link."""
    video(tmp_path, "7-a b#c?.mp4")
    assert video_link(tmp_path, "videos/7-a b#c?.mp4") == "videos/7-a%20b%23c%3F.mp4"
    assert video_link(tmp_path, "videos/8-gone.mp4") is None
    assert video_link(tmp_path, "../outside.mp4") is None
    assert video_link(tmp_path, "/etc/passwd") is None
    assert video_link(tmp_path, None) is None


def test_rows_carry_video_link_or_missing_note(tmp_path: Path) -> None:
    """Rows with a video on disk point at it; rows whose file is gone say which file."""
    records = [
        record(1, video_file=video(tmp_path, "1-r1.mp4")),
        record(2, video_file="videos/2-r2.mp4"),
    ]
    rows = _payload(render_report(tmp_path, records, summary(records)))["rows"]
    assert rows[0][6] == "videos/1-r1.mp4"
    assert rows[1][6] == ""
    assert rows[1][11] == "videos/2-r2.mp4"


def test_headline_figures_and_charts_are_on_the_page(tmp_path: Path) -> None:
    """The page states spend, render median and p90, wall time, and carries the four charts."""
    records = mixed_run(tmp_path / "run")
    page = render_report(tmp_path / "run", records, summary(records))
    for text in ("$4.00", "2m 10s", "4m 30s", "12m 05s", "estimated $6.00, cap $10.00"):
        assert text in page
    assert page.count('<svg class="chart"') == 4
    for label in ("Rows by status", "Render time distribution", "Tasks finished over time"):
        assert f'aria-label="{label}"' in page


def test_page_for_five_thousand_rows_stays_under_five_megabytes(tmp_path: Path) -> None:
    """5,000 rows sharing 20 pictures, with long prompts and errors, make a page under 5 MB."""
    pictures = [
        image(tmp_path / "img" / f"{i}.jpg", colour=f"#{i * 12:02x}6080") for i in range(20)
    ]
    records = []
    for i in range(1, 5001):
        status = Status.SUCCEEDED if i % 10 else Status.FAILED
        error = (
            f"3001 Task Execution Error task {i:08x}ffee: upstream failed" if i % 10 == 0 else None
        )
        records.append(
            record(
                i,
                status,
                image=str(pictures[i % 20]),
                prompt=f"Shot {i}: a slow dolly across a rain-soaked neon street at night, " * 3,
                error=error,
                video_file=None if error else f"videos/{i}-r{i}.mp4",
                extra={"campaign": "autumn", "owner": "sam"},
            )
        )
    page = render_report(tmp_path, records, summary(records), meta=_sheet_in(tmp_path))
    assert len(page.encode()) < FIVE_MB
    assert len(_payload(page)["rows"]) == min(5000, ROW_TABLE_LIMIT)  # the table is bounded
    assert page.count("data:image/jpeg;base64,") == 20


@pytest.mark.slow
def test_page_with_thousands_of_distinct_images_stays_under_five_megabytes(tmp_path: Path) -> None:
    """Even when every one of 3,000 rows has its own picture, thumbnails shrink and stop at the
    budget so the page stays under 5 MB."""
    records = []
    (tmp_path / "img").mkdir()
    for i in range(1, 3001):
        # Noise is the worst case for JPEG: every thumbnail as large as it can be.
        path = tmp_path / "img" / f"{i}.jpg"
        Image.effect_noise((200, 200), 60 + i % 50).convert("RGB").save(path)
        records.append(record(i, image=str(path), prompt="p" * 300))
    page = render_report(tmp_path, records, summary(records), meta=_sheet_in(tmp_path))
    assert len(page.encode()) < FIVE_MB


def test_write_report_replaces_the_file_without_leftovers(tmp_path: Path) -> None:
    """write_report writes report.html whole from the run folder and leaves no temporary file."""
    run_dir = make_run(tmp_path)
    (run_dir / "report.html").write_text("old")
    path = write_report(run_dir)
    assert path == run_dir / "report.html"
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in run_dir.iterdir() if p.name.startswith(".")) == []


def test_bar_chart_escapes_labels() -> None:
    """A label from the sheet or the provider is escaped inside the SVG."""
    svg = bar_chart([Bar("<script>x</script>", 3, "#000")], label="Errors & co")
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert 'aria-label="Errors &amp; co"' in svg


@pytest.mark.parametrize(
    ("low", "high", "step"), [(60, 75, 1), (60, 300, 15), (0, 3600, 300), (5, 5, 1)]
)
def test_histogram_bins_are_round(low: float, high: float, step: float) -> None:
    """Bin widths are round durations giving at most 20 bins."""
    assert bin_width(low, high) == step


def test_histogram_counts_every_value() -> None:
    """Each value lands in one bar; the bars' counts add up to the values given."""
    svg = histogram([61, 62, 62, 90, 240], label="t", colour="#000")
    counts = [int(n) for n in re.findall(r": (\d+)</title></rect>", svg)]
    assert sum(counts) == 5


def test_cumulative_chart_stays_small_for_many_events() -> None:
    """A line of thousands of finishes is drawn with a bounded number of points."""
    series = [Series("succeeded", [float(i) for i in range(5000)], "#0a0")]
    svg = cumulative_chart(series, label="finished", span=5000)
    points = re.search(r'points="([^"]+)"', svg)
    assert points is not None
    assert len(points.group(1).split()) == 241


def test_charts_without_data_say_so() -> None:
    """Before anything finished, charts show a note instead of empty axes."""
    assert "No finished tasks yet" in histogram([], label="t", colour="#000")
    assert "No finished tasks yet" in cumulative_chart([], label="t", span=0)
    assert "Nothing to show yet" in bar_chart([], label="t")


@pytest.mark.parametrize(
    "errors",
    [
        [f"image: {w}x{h} px; each side must be 360-2000 px (resize it, or run with --fix-images)"
         for w, h in ((300, 200), (100, 120), (359, 400), (20, 900))],
        [f"the provider failed the task: 3003 Task Execution Error Video generation failed: {m}"
         for m in ("upstream timed out", "bad frame 12", "quota", "x")],
    ],
)  # fmt: skip
def test_one_cause_is_one_group_whatever_the_numbers(errors: list[str]) -> None:
    """Four images too small (each its own size) are one cause, as are four failures with the
    same provider code: one bar, not four."""
    records = [record(i, Status.INVALID, error=e) for i, e in enumerate(errors, start=1)]
    groups = group_errors(records)
    assert len(groups) == 1
    assert groups[0].positions == [1, 2, 3, 4]
    assert groups[0].reason in ("image: too small", "3003 Task Execution Error")


def test_a_row_with_two_problems_counts_under_both_causes() -> None:
    """An invalid row with a too-large image and a wrong duration shows under both causes."""
    error = (
        "image: 3000x2400 px; each side must be 360-2000 px (resize it); "
        "duration: must be 5 or 10, got 7"
    )
    groups = group_errors([record(1, Status.INVALID, error=error)])
    assert [g.reason for g in groups] == ["image: too large", "duration: not an allowed value"]
