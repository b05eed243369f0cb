"""What the commands print while a progress bar is drawn goes above the bar, cleaned."""

from __future__ import annotations

import sys

import pytest
from tqdm import tqdm

from batchwan.cli.common import echo


def test_echo_during_a_bar_clears_the_bar_line_first(capsys: pytest.CaptureFixture[str]) -> None:
    """A message printed while the bar is shown starts on a cleared line and ends its own line,
    with its escape sequences removed; without a bar it is printed as is."""
    bar = tqdm(total=3, file=sys.stderr, desc="finished")
    bar.update(1)
    echo("stopping: \x1b]0;title\x07now", err=True)
    bar.close()
    err = capsys.readouterr().err
    before, found, _ = err.partition("stopping: now\n")
    assert found
    assert before.endswith("\r")  # the bar's line was cleared, not written after
    assert "\x1b]0;" not in err
    echo("plain \x1b[31mred", err=True)
    assert capsys.readouterr().err == "plain red\n"
