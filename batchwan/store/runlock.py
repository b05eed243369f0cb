"""One ``batchwan run`` per run folder at a time, so two cron runs never overlap.

The lock is taken on the run folder itself (``flock`` on the directory), not on a file in it:
``.lock`` only says which process holds the folder, for people. Deleting ``.lock`` (it looks
like a stale pid file) therefore lets no second runner in. The lock is released by the OS even
when the process is killed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType

from batchwan.errors import RunLocked, StateError

LOCK_FILE = ".lock"


def _holder(folder: Path) -> str:
    try:
        return (folder / LOCK_FILE).read_text(encoding="utf-8", errors="replace").strip() or "?"
    except OSError:
        return "?"


def run_is_live(run_dir: Path) -> bool:
    """Whether a ``batchwan run`` holds this folder now (a reader's question; takes nothing)."""
    try:
        handle = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return False
    try:
        fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(handle)  # closing drops the probe's shared lock, if it got one
    return False


class RunLock:
    """A lock on a run folder, released by the OS even if the process is killed.

    Exclusive for a run kept in the folder's state.db; ``shared`` for runners of a run kept in
    a shared store, which may download into one folder together (but never beside a run that
    writes a state.db there).
    """

    def __init__(self, run_dir: Path, *, shared: bool = False) -> None:
        self.folder = run_dir
        self.path = run_dir / LOCK_FILE
        self.shared = shared
        self._handle: int | None = None

    def __enter__(self) -> RunLock:
        folder = self.folder
        try:
            folder.mkdir(parents=True, exist_ok=True)
            handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            raise StateError(
                f"{folder}: cannot be used as a run folder: {exc.strerror or exc}; "
                "choose another --out"
            ) from None
        try:
            fcntl.flock(handle, (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            raise RunLocked(
                f"another batchwan run (pid {_holder(folder)}) is working in {folder}; "
                "wait for it to finish, or use another --out"
            ) from None
        self._handle = handle
        # For people only: which process holds the folder. Its loss changes nothing.
        with contextlib.suppress(OSError):
            self.path.write_text(str(os.getpid()), encoding="utf-8")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            os.close(self._handle)
            self._handle = None
