"""The command line: the only place that reads the environment, prints, or picks exit codes.

Each command lives in a module of its own beside this one.
"""

from __future__ import annotations

import click

from batchwan import __version__
from batchwan.cli.report_cmd import report
from batchwan.cli.run_cmd import run
from batchwan.cli.simulate_cmd import simulate
from batchwan.cli.status_cmd import status
from batchwan.cli.validate_cmd import validate


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="batchwan")
def main() -> None:
    """Turn a spreadsheet of prompts and first frames into Wan 2.5 videos.

    \b
    Start here:
      batchwan validate samples/demo.csv
      batchwan run jobs/demo.yaml --simulate
    """


main.add_command(validate)
main.add_command(run)
main.add_command(status)
main.add_command(report)
main.add_command(simulate)
