"""`batchwan run`."""

from __future__ import annotations

import click


@click.command()
def run() -> None:
    """Not built yet."""
    raise click.ClickException("not built yet")
