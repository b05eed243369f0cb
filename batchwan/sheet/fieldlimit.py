"""Room for huge CSV cells while batchwan reads a sheet, without changing it for anyone else.

The csv module's cell limit (128 KiB by default) is one setting for the whole process. A cell may
hold a whole image as a data: URI (10 MB of image is 13.4 MB of base64), so reading a sheet needs
more. Setting it once at import time would change it for every other user of the csv module in
the process; instead it is raised while a sheet is read and put back when the last concurrent
read ends. Threads reading at the same time share one raise (a count under a lock), so one
finishing never lowers the limit under another; meanwhile other code in the process only ever
sees a more generous limit, never a stricter one.
"""

from __future__ import annotations

import contextlib
import csv
import threading
from collections.abc import Iterator

#: The longest line of a sheet the csv module may read (a cell is bounded tighter, by the
#: reader: see ``textread.MAX_CELL``); a 10 MB image as base64 fits with room to spare.
FIELD_LIMIT = 64 * 1024 * 1024

_lock = threading.Lock()
_readers = 0
_saved = 0


@contextlib.contextmanager
def wide_csv_fields() -> Iterator[None]:
    """Let the csv module read cells of up to ``FIELD_LIMIT`` characters inside this block."""
    global _readers, _saved
    with _lock:
        if _readers == 0:
            _saved = csv.field_size_limit()
            csv.field_size_limit(max(_saved, FIELD_LIMIT))
        _readers += 1
    try:
        yield
    finally:
        with _lock:
            _readers -= 1
            if _readers == 0:
                csv.field_size_limit(_saved)
