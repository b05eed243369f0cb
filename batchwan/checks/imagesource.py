"""Check a row's `image` cell: an http(s) URL, a data: URI, or a local file in the allowed folder.

A local path is resolved (symlinks and ``..`` included) before anything is read, and refused when
it leads outside the sheet's folder or ``--image-root``: a sheet from someone else must not be
able to send your other files to a third party. Each file is probed once per check, however many
rows use it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from batchwan.catalog.rules import shown, url_problem
from batchwan.checks.media import ImageProbe, MediaProblem, probe_image
from batchwan.checks.sharelinks import direct_link

log = logging.getLogger(__name__)

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):")
# A URL of this plain shape passes url_problem for sure; most image cells are one, and parsing
# each of a million of them in full would be most of the time validation takes.
_PLAIN_URL = re.compile(r"https?://[A-Za-z0-9.-]*[A-Za-z0-9](?::[0-9]{1,4})?(?:[/?#]\S*)?\Z", re.I)
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


@dataclass(frozen=True)
class ImageVerdict:
    """What a row's image turned out to be, and what is wrong with it."""

    path: Path | None = None  # the local file to send (a fixed copy when one was made)
    digest: str | None = None  # sha256 of the original local file's bytes
    problems: tuple[MediaProblem, ...] = ()
    notes: tuple[str, ...] = ()
    url: str | None = None  # the URL to send instead of the cell's (a share link made direct)


#: The verdict of a plain image URL, shared: it is frozen, and most rows of a big sheet have one.
_PLAIN_URL_VERDICT = ImageVerdict()


@dataclass
class ImageChecker:
    """Checks image cells for one sheet; remembers each file's verdict."""

    base: Path  # the sheet's folder: relative paths start here
    root: Path  # local images must lie inside this folder (already resolved)
    fix_dir: Path | None = None
    root_given: bool = False  # the root came from --image-root, not the sheet's folder
    _cache: dict[Path, ImageVerdict] = field(default_factory=dict)
    _by_cell: dict[str, ImageVerdict] = field(default_factory=dict)  # one look per distinct cell
    _fixed_names: int = 0

    def check(self, text: str) -> ImageVerdict:
        """The verdict for one non-empty image cell."""
        match = _SCHEME.match(text)
        scheme = match.group(1).lower() if match else ""
        if scheme in ("http", "https"):
            problem = None if _PLAIN_URL.match(text) else url_problem(text)
            if problem:
                return _refuse(problem)
            share = direct_link(text)
            if share is None:
                return _PLAIN_URL_VERDICT
            if share.problem:
                return _refuse(share.problem)
            return ImageVerdict(url=share.url, notes=(f"image: {share.note}",))
        if scheme == "data":
            return self._data_uri(text)
        if _WINDOWS_DRIVE.match(text) or text.startswith("\\\\"):
            return _refuse(
                f"{shown(text)} is a Windows path on another machine; put the image in the "
                "sheet's folder (or --image-root) and give its path from there, e.g. images/a.png"
            )
        if scheme and (text[len(scheme) + 1 :].startswith("//") or scheme == "file"):
            return _refuse(
                f"must be an http(s) URL, a data: URI or a path to a file beside the sheet, "
                f"got {shown(text)}"
            )
        return self._local(text)

    def _local(self, text: str) -> ImageVerdict:
        cached = self._by_cell.get(text)
        if cached is None:
            cached = self._by_cell[text] = self._local_uncached(text)
        return cached

    def _local_uncached(self, text: str) -> ImageVerdict:
        # A sheet made on Windows says images\a.png; here that is the path images/a.png.
        written = text.replace("\\", "/") if "\\" in text else text
        try:
            candidate = Path(written).expanduser()
            resolved = (self.base / candidate).resolve()
            if self.root_given and not resolved.exists() and not candidate.is_absolute():
                resolved = (self.root / candidate).resolve()  # bare names under --image-root
            inside = resolved.is_relative_to(self.root)
        except (OSError, ValueError, RuntimeError) as exc:
            return _refuse(f"{shown(text)} is not a usable file path ({exc})")
        if not inside:
            return _refuse(
                f"{shown(text)} leads outside {self._where}; images must be inside it "
                "(move the image there, or pass --image-root)"
            )
        if resolved not in self._cache:
            self._cache[resolved] = self._probe_file(text, resolved)
        return self._cache[resolved]

    @property
    def _where(self) -> str:
        return f"--image-root {self.root}" if self.root_given else f"the sheet's folder {self.root}"

    def _probe_file(self, text: str, resolved: Path) -> ImageVerdict:
        try:
            if not resolved.is_file():
                return _refuse(f"no file {shown(text)} in {self.base} (check the name)")
            with resolved.open("rb") as handle:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
            probe = probe_image(resolved)
        except OSError as exc:
            return _refuse(f"{shown(text)} cannot be read ({exc.strerror or exc})")
        # Every image problem names the file, so a person knows which one to fix.
        named = tuple(
            MediaProblem(f"{shown(text)}: {p.message}", p.fixable) for p in probe.problems
        )
        verdict = ImageVerdict(resolved, digest, named)
        return self._maybe_fix(resolved, probe, verdict)

    def _data_uri(self, text: str) -> ImageVerdict:
        header, comma, payload = text[5:].partition(",")
        params = [p.strip().lower() for p in header.split(";")]
        if not comma or "base64" not in params[1:]:
            return _refuse("a data: URI must look like data:image/png;base64,<data>")
        if not params[0].startswith("image/"):
            return _refuse(f"a data: URI must hold an image, got {shown(params[0] or 'no type')}")
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as exc:
            return _refuse(f"the base64 data of the data: URI is damaged ({exc})")
        probe = probe_image(data)
        problems = list(probe.problems)
        declared = params[0].removeprefix("image/").replace("jpg", "jpeg")
        if probe.mime_subtype and declared != probe.mime_subtype:
            problems.append(
                MediaProblem(
                    f"the data: URI says image/{declared} but holds {probe.format}; "
                    f"write data:image/{probe.mime_subtype};base64,..."
                )
            )
            return ImageVerdict(problems=tuple(problems))
        if not problems or self.fix_dir is None or not all(p.fixable for p in problems):
            return ImageVerdict(problems=tuple(problems))
        self._fixed_names += 1
        source = self.fix_dir / f"data-uri-{self._fixed_names}.img"
        source.write_bytes(data)
        return self._maybe_fix(source, probe, ImageVerdict(problems=tuple(problems)))

    def _maybe_fix(self, source: Path, probe: ImageProbe, verdict: ImageVerdict) -> ImageVerdict:
        problems = probe.problems
        if self.fix_dir is None or not problems or not all(p.fixable for p in problems):
            return verdict
        try:
            from batchwan.checks.fixer import fix_image  # written beside this module; may be absent
        except ImportError:
            log.warning("batchwan.checks.fixer is not available; images are not fixed")
            return verdict
        try:
            fixed = fix_image(source, self.fix_dir)
            after = probe_image(fixed.path)
        except Exception as exc:  # the fixer meets the same damaged files the probe does
            message = f"could not be fixed ({exc}); fix it by hand"
            return ImageVerdict(verdict.path, verdict.digest, (MediaProblem(message),))
        if after.problems:
            left = "; ".join(p.message for p in after.problems)
            message = f"still wrong after fixing: {left}"
            return ImageVerdict(verdict.path, verdict.digest, (MediaProblem(message),))
        note = f"image: {', '.join(fixed.actions) or 'nothing to do'}"
        return ImageVerdict(fixed.path, verdict.digest, (), (note,))


def _refuse(message: str) -> ImageVerdict:
    return ImageVerdict(problems=(MediaProblem(message),))
