"""The command line: the only place that reads the environment, prints, or picks exit codes.

Each command lives in a module of its own beside this one, imported only when that command
runs (or its own --help is asked for): `batchwan --help` must not load aiohttp, the simulator
or Pillow.
"""

from __future__ import annotations

import importlib

import click

from batchwan import __version__

#: name -> (module, the first line of its docstring, shown by `batchwan --help`).
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": (
        "batchwan.cli.validate_cmd",
        "Check every row of SOURCE against the API's rules, and send nothing.",
    ),
    "run": (
        "batchwan.cli.run_cmd",
        "Generate a video for every valid row of SOURCE (a sheet or a job file).",
    ),
    "status": (
        "batchwan.cli.status_cmd",
        "Show a run's counts, cost and times, and the rows that need attention.",
    ),
    "report": (
        "batchwan.cli.report_cmd",
        "Write report.html in RUN_DIR from the run folder alone, and print its path.",
    ),
    "simulate": (
        "batchwan.cli.simulate_cmd",
        "Serve the simulated provider API on loopback until Ctrl-C.",
    ),
}


class _LazyGroup(click.Group):
    """A group whose commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module = importlib.import_module(COMMANDS[cmd_name][0])
        command = getattr(module, cmd_name)
        assert isinstance(command, click.Command)  # each module names its command after itself
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, text) for name, (_, text) in COMMANDS.items()])


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="batchwan")
def main() -> None:
    """Turn a spreadsheet of prompts and frames into Wan videos.

    \b
    Start here:
      batchwan validate samples/demo.csv
      batchwan run jobs/demo.yaml --simulate
    """
