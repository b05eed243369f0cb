"""`batchwan validate`."""

from __future__ import annotations

import click


@click.command()
def validate() -> None:
    """Not built yet."""
    raise click.ClickException("not built yet")
