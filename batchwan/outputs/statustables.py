"""The tables of `batchwan status` below its headline: breakdowns by group, and the runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from batchwan.outputs.groups import Group
from batchwan.safe_text import clean

GROUP_CAP = 30
RUN_CAP = 10
KEY_WIDTH = 28


def _key_text(key: Sequence[str], width: int = KEY_WIDTH) -> str:
    text = " / ".join(clean(k, keep_newlines=False) or "(blank)" for k in key)
    return text if len(text) <= width else text[: width - 3] + "..."


def group_lines(title: str, groups: Sequence[Group], money: Any, cap: int = GROUP_CAP) -> list[str]:
    """One table of groups: rows, succeeded, failed, seconds of video, spent and estimated."""
    if not groups:
        return []
    shown = groups[:cap]
    keys = [_key_text(g.key) for g in shown]
    key_w = max(len(title), *(len(k) for k in keys))
    lines = [
        "",
        f"By {title}",
        f"  {'':<{key_w}}  {'rows':>6}  {'ok':>6}  {'failed':>6}  {'video':>8}  "
        f"{'spent':>10}  {'estimated':>10}",
    ]
    for g, key in zip(shown, keys, strict=True):
        lines.append(
            f"  {key:<{key_w}}  {g.rows:>6,}  {g.counts['succeeded']:>6,}  "
            f"{g.counts['failed']:>6,}  {g.video_seconds:>6,} s  {money(g.spent):>10}  "
            f"{money(g.estimated):>10}"
        )
    if len(groups) > cap:
        lines.append(f"  ... and {len(groups) - cap} more (summary.json lists them all)")
    return lines


def runs_lines(
    runs: Sequence[Mapping[str, Any]], when: Any, duration: Any, cap: int = RUN_CAP
) -> list[str]:
    """One line per invocation of `run`, the latest ``cap`` of them."""
    if not runs:
        return []
    lines = ["", f"Runs: {len(runs)}"]
    if len(runs) > cap:
        lines.append(f"  ... {len(runs) - cap} earlier runs (summary.json lists them all)")
    for run in runs[-cap:]:
        end = when(run.get("ended_at")) if run.get("ended_at") else "still running or stopped"
        lines.append(
            f"  #{run.get('number')}  {when(run.get('started_at'))} to {end}  "
            f"{duration(run.get('seconds'))}, sent {run.get('sent', 0)}, "
            f"collected {run.get('collected', 0)}"
        )
    return lines
