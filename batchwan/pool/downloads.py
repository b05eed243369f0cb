"""The run's videos folder: made once, and its renames made durable in shared folder fsyncs.

Each video is written as ``<name>.part``, fsynced, and renamed by the client: after a crash a
video either has its full content under its real name or is absent. The rename itself becomes
durable only when the folder is fsynced, and the record says a video is downloaded only after
that, so the record never names a file a crash could take back (a video link may have expired
by the next run, so a lost file could not always be fetched again).

One folder fsync covers every rename made before it started, so downloads that end together
share one (group commit, as the ledger does for its writes): one fsync per file for the
content, and one per batch for the names.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path


class VideoFolder:
    """``videos/`` in the run folder: created on first use; ``sync`` makes renames durable."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._made = False
        self._waiting: list[asyncio.Future[None]] = []
        self._syncing: asyncio.Task[None] | None = None

    async def ready(self) -> None:
        """Create the folder (and make its own name durable) the first time it is needed."""
        if not self._made:
            await asyncio.to_thread(_make_durably, self.path)
            self._made = True

    async def sync(self) -> None:
        """Return once every rename made in the folder before this call is durable."""
        future = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        if self._syncing is None:
            self._syncing = asyncio.create_task(self._sync_rounds())
        await future

    async def _sync_rounds(self) -> None:
        try:
            while self._waiting:
                # Everyone waiting now renamed before this round starts: one fsync for all.
                batch, self._waiting = self._waiting, []
                error: OSError | None = None
                try:
                    await asyncio.to_thread(fsync_folder, self.path)
                except OSError as exc:
                    error = exc
                for future in batch:
                    if future.done():
                        continue
                    if error is None:
                        future.set_result(None)
                    else:
                        future.set_exception(error)
        finally:
            self._syncing = None
            for future in self._waiting:  # cancelled mid-round: nobody is left to serve them
                future.cancel()
            self._waiting = []


def fsync_folder(folder: Path) -> None:
    """Make the names in ``folder`` durable; a platform that cannot open a folder is let be."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows: the rename is still atomic, only its durability is unknown
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a folder (EINVAL); nothing better to do
        pass
    finally:
        os.close(fd)


def _make_durably(folder: Path) -> None:
    if folder.is_dir():
        return
    folder.mkdir(parents=True, exist_ok=True)
    fsync_folder(folder.parent)
