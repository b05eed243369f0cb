"""Small JPEG previews of a run's local images, for report.html.

Only an image that passed validation is previewed, and only when it is a regular file inside
the allowed folder (the sheet's folder, or --image-root): a sheet must not be able to put a
picture of another file of yours into a page you mail around, and a FIFO or a device named
like an image must not hang the report.
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import re
import stat
import warnings
from pathlib import Path

from PIL import Image, ImageOps

#: Thumbnails of all rows together may take this much of the page; past it, rows show no preview.
THUMBNAIL_BUDGET = 2_500_000


def local_image(image: str, base: Path | None = None) -> Path | None:
    """The file a row's image names on this machine, or None for a URL, a data: placeholder, or
    a relative path with no folder to resolve it against."""
    if not image or image.startswith("data:") or re.match(r"^[A-Za-z][\w+.-]*://", image):
        return None
    if os.path.isabs(image):
        return Path(os.path.normpath(image))
    return Path(os.path.normpath(base / image)) if base is not None else None


def inside(path: Path, root: Path) -> bool:
    """True when ``path``, links followed, lies inside ``root``."""
    real, top = os.path.realpath(path), os.path.realpath(root)
    return real == top or real.startswith(top.rstrip(os.sep) + os.sep)


def read_regular_file(path: Path, limit: int) -> bytes | None:
    """The bytes of ``path`` when it is a regular file of at most ``limit`` bytes; else None.

    Opened without blocking and checked on the open descriptor, so a FIFO (or a file swapped
    for one after a check) is never waited on.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        with os.fdopen(fd, "rb", closefd=True) as handle:
            fd = -1
            return handle.read(limit + 1)[:limit]
    except OSError:
        return None
    finally:
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)


class Thumbnails:
    """Small JPEG previews of local images, each distinct file encoded once, within a budget."""

    MAX_BYTES = 20 * 1024 * 1024  # the API takes images up to 10 MB; anything bigger is odd

    def __init__(
        self,
        distinct: int,
        budget: int = THUMBNAIL_BUDGET,
        base: Path | None = None,
        root: Path | None = None,
    ) -> None:
        # Many distinct images get smaller previews, so that a big sheet still fits the budget.
        self.size = 96 if distinct <= 600 else 64 if distinct <= 2000 else 48
        self.budget = budget
        self.uris: list[str] = []
        self._index: dict[str, int] = {}
        self._used = 0
        self.base = base  # the sheet's folder, for image paths written relative to it
        self.root = root if root is not None else base  # images must lie inside this folder

    def index(self, image: str) -> int:
        """The position of the image's preview in ``uris``; -1 when there is none."""
        path = local_image(image, self.base)
        if path is None or self.root is None or not inside(path, self.root):
            return -1
        key = os.path.realpath(path)
        if key not in self._index:
            uri = self._encode(Path(key)) if self._used < self.budget else None
            self._index[key] = -1 if uri is None else len(self.uris)
            if uri is not None:
                self.uris.append(uri)
                self._used += len(uri)
        return self._index[key]

    def _encode(self, path: Path) -> str | None:
        data = read_regular_file(path, self.MAX_BYTES)
        if data is None:
            return None
        try:
            with warnings.catch_warnings():
                # A preview is a courtesy: an odd image must not stop the report.
                warnings.simplefilter("ignore")
                with Image.open(io.BytesIO(data)) as im:
                    im.draft("RGB", (self.size * 2, self.size * 2))
                    picture = ImageOps.exif_transpose(im)
                    picture.thumbnail((self.size, self.size))
                    flat = _on_white(picture)
                    out = io.BytesIO()
                    flat.save(out, "JPEG", quality=70, optimize=True)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            return None
        return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def _on_white(picture: Image.Image) -> Image.Image:
    """The picture as RGB, transparent parts laid on white rather than black."""
    if picture.mode in ("RGBA", "LA") or "transparency" in picture.info:
        rgba = picture.convert("RGBA")
        flat = Image.new("RGB", rgba.size, "white")
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return picture.convert("RGB")
