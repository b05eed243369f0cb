"""The floors that `status` and `validate` are measured against, each run as a child.

python -m bench.floors csv SHEET      read every row with the standard csv module
python -m bench.floors sqlite DB      count the rows of state.db by status with one query
"""

from __future__ import annotations

import csv
import sqlite3
import sys


def main() -> None:
    """Do the one floor named on the command line."""
    kind, path = sys.argv[1:3]
    if kind == "csv":
        with open(path, newline="", encoding="utf-8") as handle:
            rows = sum(1 for _ in csv.DictReader(handle))
        print(rows)
    elif kind == "sqlite":
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            counts = conn.execute("SELECT status, COUNT(*) FROM tasks GROUP BY status").fetchall()
        print(counts)
    else:
        raise SystemExit(f"unknown floor {kind!r}")


if __name__ == "__main__":
    main()
