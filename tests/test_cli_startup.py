"""The command line starts light and says its defaults: lazy imports, --help of every command."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from batchwan.cli import COMMANDS, main
from tests.runhelpers import write_sheet

_PROBE = """
import json, sys
from batchwan.cli import main
try:
    main(sys.argv[1:], prog_name="batchwan")
except SystemExit:
    pass
heavy = ("aiohttp", "PIL", "pandas", "batchwan.sim", "batchwan.provider", "openpyxl")
loaded = {m for m in sys.modules for h in heavy if m == h or m.startswith(h + ".")}
print(json.dumps(sorted(loaded)))
"""


def _heavy_modules_after(*args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return {name.split(".")[0] if not name.startswith("batchwan") else name for name in loaded}


def test_help_imports_no_network_simulator_image_or_table_library() -> None:
    """`batchwan --help` loads neither aiohttp, the simulator, Pillow nor pandas."""
    assert _heavy_modules_after("--help") == set()


def test_validate_of_url_rows_imports_no_network_or_simulator(tmp_path: Path) -> None:
    """`batchwan validate` without --check-urls never loads aiohttp, the simulator or pandas."""
    sheet = write_sheet(tmp_path, 3)
    loaded = _heavy_modules_after("validate", str(sheet))
    assert not loaded & {"aiohttp", "batchwan.sim", "batchwan.provider", "pandas"}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_command_list_says_what_each_command_says_of_itself(name: str) -> None:
    """`batchwan --help` shows each command's own first docstring line (kept in one place)."""
    module, text = COMMANDS[name]
    command = getattr(importlib.import_module(module), name)
    assert isinstance(command, click.Command)
    assert (command.help or "").strip().splitlines()[0] == text


def test_main_help_lists_every_command() -> None:
    """The lazy group lists every command with its line of help."""
    result = CliRunner().invoke(main, ["--help"], terminal_width=200)
    assert result.exit_code == 0
    for name, (_, text) in COMMANDS.items():
        assert f"{name}  " in result.output
        assert text in result.output


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (
            "run",
            [
                "Run folder.  [default: the job file's out:, else runs/<sheet name>]",
                "Most tasks in flight.  [default: 2]",
                "Most creates per second.  [default: 2]",
                "Seconds between polls of a task.  [default: 20; 0.2 with --simulate]",
                "USD ceiling for this run folder.  [default: no ceiling]",
                "Model name.  [default: wan2.5-i2v-preview]",
                "[default: $BATCHWAN_BASE_URL, else https://api.mulerouter.ai]",
                "Local images must lie inside this folder.  [default: the sheet's folder]",
            ],
        ),
        ("validate", ["Allow local images anywhere inside DIR.  [default: the sheet's folder]"]),
        ("simulate", ["[default: 127.0.0.1]", "[default: 8808;", "[default: 0.0;"]),
    ],
)
def test_help_of_each_command_shows_its_defaults(command: str, expected: list[str]) -> None:
    """Every option with a value shows its default in --help."""
    result = CliRunner().invoke(main, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for line in expected:
        assert " ".join(line.split()) in text
