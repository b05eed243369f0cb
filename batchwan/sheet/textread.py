"""Text sheets as Excel, LibreOffice and Google Sheets write them: encodings, separators, limits.

Encoding, when not forced by ``encoding:``: a byte-order mark decides (UTF-8, UTF-16 or UTF-32:
Excel's "Unicode Text" is UTF-16 with a mark); else UTF-16 without a mark shows as every other
byte zero in its first 4 KB; else text that is valid UTF-8 is UTF-8; else it
is Windows-1252 (what Excel on Windows writes for "CSV"), or Latin-1 when it holds one of the
five bytes Windows-1252 leaves undefined. A strict rule, not a statistical guess: the same file
always reads the same way, and any guess is said once.

Separator, when not forced by ``delimiter:``: a ``.tsv`` is tab-separated; a ``.csv`` takes
whichever of comma, semicolon (European Excel), tab or pipe its header line holds most of.

Bounds, so that a stranger's sheet costs bounded memory: a line longer than ``MAX_LINE``
characters is skipped without being held (its row is invalid, saying so), a cell longer than
``MAX_CELL`` makes its row invalid, and a file larger than ``MAX_FILE_BYTES`` is refused. The
file is read as a stream, one line at a time; the csv module's field limit is raised only while
a sheet is read, and restored after.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from batchwan.errors import InputError
from batchwan.sheet.fieldlimit import FIELD_LIMIT, wide_csv_fields

#: A cell may hold a whole image as a data: URI: 10 MB of image is 13.4 MB of base64.
MAX_CELL = 16 * 1024 * 1024
#: The longest line read; a longer one is skipped (its row invalid) without being held.
MAX_LINE = FIELD_LIMIT
#: The largest sheet file read at all (a million rows of URLs is about 150 MB).
MAX_FILE_BYTES = 2 * 1024 * 1024 * 1024

#: Marks a line that was skipped for its length, in the stream of lines given to csv.
TOO_LONG = "\ue000batchwan-line-too-long\ue000"

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_CP1252_UNDEFINED = (b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d")
_CHUNK = 1024 * 1024
_SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


@dataclass(frozen=True)
class TextFormat:
    """How a text sheet is read: its encoding and separator, and what was guessed."""

    encoding: str
    delimiter: str
    notes: tuple[str, ...] = ()


def _open(path: Path) -> io.BufferedReader:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InputError(
                f"{path}: is {size / 1e9:.1f} GB; a sheet may be at most "
                f"{MAX_FILE_BYTES / 1e9:.1f} GB (split it)"
            )
        return path.open("rb")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not a sheet") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read: {exc.strerror or exc}") from None


def detect_encoding(path: Path) -> tuple[str, str | None]:
    """The encoding of a text file by the rule above, and a note when it is not UTF-8."""
    with _open(path) as handle:
        head = handle.read(4)
        for bom, name in _BOMS:
            if head.startswith(bom):
                mark = f"the sheet is read as {name.upper()} (byte-order mark)"
                note = None if name == "utf-8-sig" else mark
                return name, note
        handle.seek(0)
        sixteen = _utf16_without_bom(handle.read(4096))
        if sixteen:
            return sixteen, f"the sheet is read as {sixteen.upper()} (no byte-order mark)"
        handle.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        undefined = False
        utf8 = True
        while chunk := handle.read(_CHUNK):
            undefined = undefined or any(b in chunk for b in _CP1252_UNDEFINED)
            if utf8:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    utf8 = False
        if utf8:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                utf8 = False
    if utf8:
        return "utf-8", None
    name = "latin-1" if undefined else "cp1252"
    shown = "Latin-1" if undefined else "Windows-1252"
    return name, (
        f"the sheet is not UTF-8; read as {shown} (if letters look wrong, "
        "set `encoding:` in a job file, or save it as CSV UTF-8)"
    )


def _utf16_without_bom(head: bytes) -> str | None:
    """UTF-16 text without a mark: mostly ASCII, so every other byte is zero."""
    if len(head) < 8:
        return None
    even, odd = head[0::2], head[1::2]
    if odd.count(0) > 0.9 * len(odd) and even.count(0) < 0.1 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.9 * len(even) and odd.count(0) < 0.1 * len(odd):
        return "utf-16-be"
    return None


def sniff_delimiter(header_line: str) -> str:
    """The separator a header line uses most: comma, semicolon, tab or pipe (comma on a tie)."""
    counts = {sep: header_line.count(sep) for sep in _SEPARATORS}
    best = max(counts, key=lambda sep: (counts[sep], sep == ","))
    return best if counts[best] else ","


def text_format(
    path: Path, *, encoding: str | None, delimiter: str | None, default: str
) -> TextFormat:
    """The encoding and separator of a CSV/TSV, forced or found, with the guesses said."""
    notes: list[str] = []
    if encoding is None:
        encoding, note = detect_encoding(path)
        if note:
            notes.append(note)
    if delimiter is None:
        delimiter = default
        if default == ",":
            delimiter = sniff_delimiter(_first_line(path, encoding))
            if delimiter != ",":
                notes.append(f"the sheet is read as {_SEPARATORS[delimiter]}-separated")
    return TextFormat(encoding, delimiter, tuple(notes))


def _first_line(path: Path, encoding: str) -> str:
    """The first non-blank line (at most MAX_LINE characters), for sniffing the separator."""
    for line in bounded_lines(path, encoding):
        if line.strip() and line != TOO_LONG:
            return line
    return ""


def bounded_lines(path: Path, encoding: str) -> Iterator[str]:
    """The file's lines with their ends, streamed; a line over MAX_LINE becomes ``TOO_LONG``."""
    handle = _open(path)
    try:
        text = io.TextIOWrapper(handle, encoding=encoding, newline="")
        while line := text.readline(MAX_LINE + 1):
            if len(line) > MAX_LINE:
                while (rest := text.readline(MAX_LINE)) and not rest.endswith(("\n", "\r")):
                    pass  # skip the rest of the line without holding it
                yield TOO_LONG + "\n"
                continue
            yield line
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: cannot be read as {encoding} (byte 0x{exc.object[exc.start]:02x}); "
            "set `encoding:` in a job file to the sheet's encoding, or save it as CSV UTF-8"
        ) from None
    finally:
        handle.close()


class Record(NamedTuple):  # a tuple: built for every line of a big sheet, at C speed
    """One record of a delimited file: its cells, and its number as spreadsheets show it."""

    line: int  # 1-based among all records, blank ones included (the spreadsheet's row number)
    cells: list[str]
    error: str | None = None
    cell: int | None = None  # the 0-based cell the error is about, when it is one cell's


def oversized(number: int, cells: list[str]) -> Record:
    """A record with a cell over MAX_CELL: that cell emptied, the record invalid."""
    if not cells or max(map(len, cells)) <= MAX_CELL:  # the common case, at C speed
        return Record(number, cells)
    for index, cell in enumerate(cells):
        if len(cell) > MAX_CELL:
            kept = [c if len(c) <= MAX_CELL else "" for c in cells]
            message = (
                f"holds {len(cell) / 1e6:.0f} MB; a cell may hold at most "
                f"{MAX_CELL // (1024 * 1024)} MB (link large images by URL instead)"
            )
            return Record(number, kept, message, index)
    return Record(number, cells)


def read_records(path: Path, fmt: TextFormat) -> Iterator[Record]:
    """Every record of a delimited file, streamed; a too-long line or cell fails its record."""
    with wide_csv_fields():  # a line may be MAX_LINE long; the csv module allows 128 KiB
        reader = csv.reader(bounded_lines(path, fmt.encoding), delimiter=fmt.delimiter)
        number = 0
        try:
            for cells in reader:
                number += 1
                yield _record(number, cells)
        except csv.Error as exc:
            raise InputError(f"{path}: line {reader.line_num}: {exc}") from None


def _record(number: int, cells: list[str]) -> Record:
    if cells and cells[0].startswith(TOO_LONG):  # the marker bounded_lines put in its place
        return Record(
            number,
            [],
            f"is longer than {MAX_LINE // (1024 * 1024)} MB and was not read; "
            "link large images by URL instead of pasting them in",
        )
    return oversized(number, cells)
