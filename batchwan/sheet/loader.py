"""Read any sheet format into rows that remember their position, cells as the user typed them.

Formats: CSV, TSV, XLSX, JSONL and YAML (a list of mappings, or a mapping with ``rows:`` and an
optional ``defaults:``). Text is UTF-8, with or without a byte-order mark.

Choices a user can rely on:

* Cells stay text exactly as typed: no float seeds, no ``NaN`` for an empty cell, leading zeros
  kept. YAML and JSON scalars become the text a person would write (``true``, ``5``, ``5.0``;
  null is empty). YAML sheets are read without YAML 1.1's guessing, so ``seed: 0123`` stays
  ``0123`` rather than becoming the octal number 83.
* In CSV, TSV and XLSX a row whose every cell is blank is skipped and takes no position: exports
  from spreadsheet programs often end in rows of bare commas, and reporting each as a row with
  no prompt helps nobody. Every other row keeps its position among the data rows, starting at 1.
  In JSONL a blank line is skipped; in YAML every list item is a row.
* A line that cannot be parsed (a JSONL line that is not a JSON object, a CSV row with more cells
  than the header) is a problem of that row only: ``SheetRow.read_error``.
* A file that cannot be read at all raises one ``InputError`` naming the file and the reason.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import warnings
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from batchwan.errors import InputError
from batchwan.values import SheetRow

log = logging.getLogger(__name__)

#: The extensions ``read_sheet`` understands.
SHEET_SUFFIXES: tuple[str, ...] = (".csv", ".tsv", ".xlsx", ".jsonl", ".yaml", ".yml")

# A cell may hold a whole image as a data: URI (10 MB of image is 13.4 MB of base64); the csv
# module's default limit of 128 KiB would reject it as a malformed file.
_FIELD_LIMIT = 32 * 1024 * 1024
csv.field_size_limit(max(csv.field_size_limit(), _FIELD_LIMIT))


@dataclass(frozen=True)
class Sheet:
    """A sheet as read: its columns in sheet order, its rows, and a YAML sheet's defaults."""

    path: Path
    columns: tuple[str, ...]
    rows: list[SheetRow]
    defaults: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # what was guessed in reading it (encoding, separator, tab)


def read_sheet(path: Path) -> Sheet:
    """Read a CSV, TSV, XLSX, JSONL or YAML sheet; InputError when it cannot be read at all."""
    suffix = path.suffix.lower()
    if path.is_dir():  # before the suffix: "a file without an extension" would mislead
        raise InputError(f"{path}: is a folder, not a sheet; name the sheet file inside it")
    if suffix not in SHEET_SUFFIXES:
        kind = f"a {suffix} file" if suffix else "a file without an extension"
        raise InputError(
            f"{path}: cannot read {kind} as a sheet; use one of {', '.join(SHEET_SUFFIXES)}"
        )
    if suffix == ".xlsx":
        return _read_xlsx(path)
    text = read_text(path)
    if suffix in (".csv", ".tsv"):
        return _read_delimited(path, text, "\t" if suffix == ".tsv" else ",")
    if suffix == ".jsonl":
        return _read_jsonl(path, text)
    return _read_yaml(path, text)


def cell_text(value: Any) -> str:
    """The text a person would have typed for a YAML/JSON/XLSX value (null is empty)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        return str(value)


def read_text(path: Path) -> str:
    """A file's text as UTF-8 (a byte-order mark is dropped); InputError naming the reason."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not a sheet") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "save it as UTF-8 (in Excel: CSV UTF-8)"
        ) from None


def _assemble(path: Path, header: list[str], body: Iterable[list[str]]) -> Sheet:
    """Turn a header and positional rows into a Sheet (shared by CSV, TSV and XLSX)."""
    columns = [h.strip() or f"column {i}" for i, h in enumerate(header, start=1)]
    seen: set[str] = set()
    for name in columns:
        if name in seen:
            raise InputError(f"{path}: column {name!r} appears twice in the header; rename one")
        seen.add(name)
    width = len(columns)
    rows: list[SheetRow] = []
    used: set[int] = set()  # which unnamed columns hold anything, so empty ones can be dropped
    position = 0
    for cells in body:
        if not any(c.strip() for c in cells):
            continue
        position += 1
        if len(cells) > width:
            extra = [c for c in cells[width:] if c.strip()]
            if extra:
                rows.append(
                    SheetRow(
                        position,
                        dict(zip(columns, cells, strict=False)),
                        f"has {len(cells)} cells but the header has {width} columns; "
                        "quote cells that contain the separator",
                    )
                )
                continue
            cells = cells[:width]
        if len(cells) < width:
            cells = cells + [""] * (width - len(cells))
        for i, value in enumerate(cells):
            if value and not header[i].strip():
                used.add(i)
        rows.append(SheetRow(position, dict(zip(columns, cells, strict=True))))
    unnamed = [columns[i] for i, h in enumerate(header) if not h.strip() and i not in used]
    if unnamed:
        drop = set(unnamed)
        columns = [c for c in columns if c not in drop]
        rows = [
            SheetRow(r.position, {k: v for k, v in r.cells.items() if k not in drop}, r.read_error)
            for r in rows
        ]
    return Sheet(path, tuple(columns), rows)


def _header(path: Path, lines: Iterator[list[str]], unit: str) -> list[str]:
    """The first line with any text: blank lines above a header are common in exports."""
    for line in lines:
        if any(c.strip() for c in line):
            return line
    raise InputError(f"{path}: has no header row; the first {unit} must name the columns")


def _read_delimited(path: Path, text: str, delimiter: str) -> Sheet:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        return _assemble(path, _header(path, reader, "line"), reader)
    except csv.Error as exc:
        raise InputError(f"{path}: line {reader.line_num}: {exc}") from None


def _xlsx_rows(path: Path) -> Iterator[list[str]]:
    import openpyxl  # imported here: it is slow to import and only XLSX needs it

    with warnings.catch_warnings():
        # openpyxl warns about styles and extensions it ignores; they say nothing about the data.
        warnings.simplefilter("ignore")
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            sheet = book.worksheets[0] if book.worksheets else None
            if sheet is None:
                return
            # openpyxl pads every row to the recorded size: one stray cell at XFD1048576 (or a
            # <dimension> that claims it) would mean 17 billion empty cells. Unpadded rows are
            # short, and rows missing in between come as empty tuples.
            sheet.reset_dimensions()
            for values in sheet.iter_rows(values_only=True):
                yield [_xlsx_cell(v) for v in values]
        finally:
            book.close()


def _xlsx_cell(value: Any) -> str:
    # Excel stores every number as a float; a whole number is shown (and meant) without ".0".
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return cell_text(value)


def _read_xlsx(path: Path) -> Sheet:
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        lines = _xlsx_rows(path)
        return _assemble(path, _header(path, lines, "row"), lines)
    except InputError:
        raise
    except zipfile.BadZipFile:
        raise InputError(f"{path}: is not an XLSX workbook (not a zip file)") from None
    except Exception as exc:  # openpyxl raises many unrelated types on a damaged workbook
        raise InputError(f"{path}: cannot be read as an XLSX workbook: {exc}") from None


def _columns_of(records: Iterable[dict[str, str]]) -> tuple[str, ...]:
    order: dict[str, None] = {}
    for cells in records:
        for key in cells:
            order.setdefault(key, None)
    return tuple(order)


def _mapping_cells(value: dict[Any, Any]) -> dict[str, str]:
    return {cell_text(k).strip(): cell_text(v) for k, v in value.items()}


def _read_jsonl(path: Path, text: str) -> Sheet:
    rows: list[SheetRow] = []
    position = 0
    # Only "\n" ends a JSONL line: str.splitlines would also split inside a value at U+2028.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        position += 1
        try:
            value = json.loads(line)
        except (ValueError, RecursionError) as exc:
            rows.append(SheetRow(position, {}, f"line {number} is not valid JSON ({exc})"))
            continue
        if not isinstance(value, dict):
            kind = type(value).__name__
            rows.append(
                SheetRow(position, {}, f"line {number} is a JSON {kind}, not an object {{...}}")
            )
            continue
        rows.append(SheetRow(position, _mapping_cells(value)))
    return Sheet(path, _columns_of(r.cells for r in rows), rows)


# mypy cannot type a base class chosen at run time; both choices are safe loaders.
class _TextLoader(yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader):  # type: ignore[misc]
    """A safe loader that keeps plain scalars as typed text; only null and `<<` are resolved."""


# Without YAML 1.1's implicit typing, `0123`, `1_000`, `yes` and `5.0` reach validation as typed.
_TextLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag.endswith((":null", ":merge"))]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse_yaml(path: Path, text: str, *, typed: bool) -> Any:
    """Parse one YAML document; InputError on any YAML error (typed=False keeps text)."""
    loader: Any = _TextLoader
    if typed:
        loader = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader
    try:
        data = yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        reason = str(exc).replace("\n", " ")
        raise InputError(f"{path}: is not valid YAML: {reason}") from None
    except (RecursionError, ValueError, TypeError, OverflowError) as exc:
        raise InputError(f"{path}: is not usable YAML: {exc}") from None
    if not _fits(data, _YAML_ALIAS_ROOM * len(text) + 100_000):
        raise InputError(
            f"{path}: its YAML aliases (*name) expand to far more values than the file holds; "
            "write the values out instead of nesting aliases"
        )
    return data


#: How many values a YAML file may expand to, per character of text. Aliases are shared, not
#: copied, when loaded; but every later step (cells as text, messages) walks them in full, so
#: a few nested aliases (the "billion laughs") would take minutes and gigabytes. `<<: *defaults`
#: in every row stays far below this.
_YAML_ALIAS_ROOM = 10


def _fits(data: Any, budget: int) -> bool:
    """Whether ``data``, with every alias expanded, holds at most ``budget`` values."""
    stack = [data]
    seen = 0
    while stack:
        value = stack.pop()
        seen += 1
        if seen > budget:
            return False
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return True


def _read_yaml(path: Path, text: str) -> Sheet:
    data = parse_yaml(path, text, typed=False)
    defaults: dict[str, Any] = {}
    if isinstance(data, dict) and "rows" in data:
        raw_defaults = data.get("defaults") or {}
        if not isinstance(raw_defaults, dict):
            raise InputError(f"{path}: `defaults:` must be a mapping of column: value")
        defaults = _mapping_cells(raw_defaults)
        data = data["rows"] if data["rows"] is not None else []
    elif isinstance(data, dict) and "sheet" in data:
        raise InputError(f"{path}: is a job file, not a sheet; pass it as the SOURCE instead")
    if not isinstance(data, list):
        raise InputError(
            f"{path}: a YAML sheet must be a list of rows, or a mapping with `rows:` "
            "(and optional `defaults:`)"
        )
    rows: list[SheetRow] = []
    for position, item in enumerate(data, start=1):
        if isinstance(item, dict):
            rows.append(SheetRow(position, _mapping_cells(item)))
        else:
            kind = "empty" if item is None else f"a {type(item).__name__}"
            rows.append(SheetRow(position, {}, f"item {position} is {kind}, not a mapping"))
    return Sheet(path, _columns_of(r.cells for r in rows), rows, defaults)
