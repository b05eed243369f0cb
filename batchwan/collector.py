"""The cyclic garbage collector paused while a big sheet's many objects are built."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["collector_paused"]


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a sheet's rows (or their records) are built.

    A million rows are millions of new objects and no cycles: each collection pass walks all
    of them again, which doubled the time to read a big sheet, and more than doubles the time
    to build its records. Only resumed if it was running.
    """
    running = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if running:
            gc.enable()
