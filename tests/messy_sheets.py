"""Sheets as Excel, LibreOffice and Google Sheets write them, built byte by byte for the tests.

Each builder writes one file into a folder and returns its path. What each one should send is
pinned in ``test_sheets.py``.
"""

from __future__ import annotations

import codecs
from pathlib import Path

import openpyxl
from openpyxl.styles import Font

URL = "https://images.example.com/{}.jpg"
PLAIN_URL = "https://images.example.com/a.jpg"

#: A title row above the header, a blank line, valid rows, bad cells, a repeated id, a repeated
#: content, a blank row, a quoted cell over two lines, a row with too many cells, a bad scheme.
MIXED_ROWS = (
    "Clips for the spring campaign\n"
    "\n"
    "id,prompt,image,duration,resolution,seed,campaign\n"
    f"a1,a harbour at dawn,{PLAIN_URL},5,720P,1,spring\n"
    f"a2,,{PLAIN_URL},7,720P,2,spring\n"
    f"a1,a second a1,{PLAIN_URL},5,720p,3,spring\n"
    ",,,,,,\n"
    f',"two\nlines",{PLAIN_URL},10,1080P,,autumn\n'
    f",two lines again,{PLAIN_URL},10,1080P,,autumn\n"
    f",two lines again,{PLAIN_URL},10,1080P,,autumn\n"
    f"a9,a prompt,{PLAIN_URL},5,720P,-1,spring,stray\n"
    "a10,a prompt,ftp://example.com/x.jpg,5,999P,4,spring\n"
)


def campaign_workbook(folder: Path) -> Path:
    """Two tabs: "Notes" (no header) first, then "Shots" as a person lays it out.

    Shots: a title merged across A1:E1, a blank row 2, the header on row 3 (``Prompt``,
    ``Image URL``, ``Duration (s)``, ``Campaign``, ``Notes``); ``Campaign`` merged over rows
    4-6; row 4's image a ``=HYPERLINK`` formula, row 5's a cell with a link attached; row 6
    hidden; row 7 a plain URL with a 10 s duration.
    """
    book = openpyxl.Workbook()
    notes = book.active
    assert notes is not None
    notes.title = "Notes"
    notes["A1"] = "Read me: the shots are on the next tab."
    shots = book.create_sheet("Shots")
    shots["A1"] = "Spring campaign - video shots"
    shots["A1"].font = Font(bold=True, size=14)
    shots.merge_cells("A1:E1")
    shots.append([])  # row 2 blank
    shots.append(["Prompt", "Image URL", "Duration (s)", "Campaign", "Notes"])
    shots.append(["a red kite", f'=HYPERLINK("{URL.format(4)}", "kite picture")', 5, "spring"])
    shots.append(["a blue boat", "boat picture", 5, None, "linked"])
    shots["B5"].hyperlink = URL.format(5)
    shots.append(["a hidden row", URL.format(6), 5, None, "hidden"])
    shots.merge_cells("D4:D6")
    shots.row_dimensions[6].hidden = True
    shots.append(["a green hill", URL.format(7), 10, "summer", "plain"])
    path = folder / "campaign.xlsx"
    book.save(path)
    book.close()
    return path


def windows_1252_csv(folder: Path) -> Path:
    """Excel on Windows, "CSV (Comma delimited)": Windows-1252, CRLF, a curly quote and é."""
    text = 'prompt,image\r\n"Café crème, “slow” pan",' + URL.format(1) + "\r\n"
    path = folder / "cp1252.csv"
    path.write_bytes(text.encode("cp1252"))
    return path


def unicode_text(folder: Path) -> Path:
    """Excel's "Unicode Text": UTF-16 LE with a byte-order mark, tab-separated, CRLF."""
    text = f"prompt\timage\tduration\r\n東京の夜\t{URL.format(2)}\t10\r\n"
    path = folder / "unicode.tsv"
    path.write_bytes(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    return path


def semicolon_csv(folder: Path) -> Path:
    """European Excel: semicolons, a comma inside a cell, Windows-1252 (ä)."""
    text = f'prompt;image;duration\r\n"Bär, langsam";{URL.format(3)};10\r\n'
    path = folder / "semicolon.csv"
    path.write_bytes(text.encode("cp1252"))
    return path


def google_sheets_csv(folder: Path) -> Path:
    """Google Sheets "Download as CSV": UTF-8, no BOM, LF, a title row and a blank line."""
    text = (
        "Shot list\n"
        "\n"
        "Prompt,Image URL,Negative prompt,Seconds\n"
        f"a fox,{URL.format(8)},blur,10\n"
        "\n"
        f"an owl,{URL.format(9)},,7\n"
    )
    path = folder / "google.csv"
    path.write_text(text, encoding="utf-8", newline="")
    return path
