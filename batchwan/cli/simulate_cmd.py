"""`batchwan simulate`."""

from __future__ import annotations

import click


@click.command()
def simulate() -> None:
    """Not built yet."""
    raise click.ClickException("not built yet")
