"""`batchwan report`."""

from __future__ import annotations

import click


@click.command()
def report() -> None:
    """Not built yet."""
    raise click.ClickException("not built yet")
