"""One ``batchwan run`` per run folder at a time, so two cron runs never overlap."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from batchwan.errors import RunLocked, StateError

LOCK_FILE = ".lock"


class RunLock:
    """An exclusive lock on a run folder, released by the OS even if the process is killed."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOCK_FILE
        self._handle: int | None = None

    def __enter__(self) -> RunLock:
        folder = self.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
            handle = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StateError(
                f"{folder}: cannot be used as a run folder: {exc.strerror or exc}; "
                "choose another --out"
            ) from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(handle, 32).decode(errors="replace").strip() or "?"
            os.close(handle)
            raise RunLocked(
                f"another batchwan run (pid {holder}) is working in {self.path.parent}; "
                "wait for it to finish, or use another --out"
            ) from None
        os.ftruncate(handle, 0)
        os.write(handle, str(os.getpid()).encode())
        self._handle = handle
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
