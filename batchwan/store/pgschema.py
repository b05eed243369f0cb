"""PostgreSQL plumbing for the shared store: the URL, the connection pool, the migrations.

Migrations are plain SQL files in ``migrations/`` (``NNNN_name.sql``), applied in order, each
once, recorded in ``bw_schema``; runners starting together take turns through an advisory lock.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import tuple_row
from psycopg_pool import ConnectionPool

from batchwan.errors import InputError, StateError
from batchwan.store.choose import is_postgres

#: Where a run folder says which shared store holds its record (never a password).
POINTER_FILE = "store.json"
#: Any fixed number: the advisory lock under which migrations are applied.
_MIGRATION_LOCK = 74_201_991


def check_url(url: str) -> str:
    """The URL if it can be used; InputError for a password in it or a URL libpq cannot read."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise InputError(f"--store: not a PostgreSQL URL libpq can read: {exc}") from None
    if parts.get("password"):
        raise InputError(
            "--store: the URL holds a password, which other users of the machine can read in "
            "the process list; remove it and give it through PGPASSWORD, ~/.pgpass or a "
            "service file (PGSERVICE) instead"
        )
    return url


def open_pool(url: str, *, size: int = 4) -> ConnectionPool:
    """A small pool of connections to the shared store, opened now (StateError if it fails)."""
    try:  # one plain connection first: a wrong URL fails at once, with libpq's own words
        psycopg.connect(check_url(url), connect_timeout=15).close()
    except psycopg.Error as exc:
        # No password can be in the URL (check_url refused those), so it may be shown.
        raise StateError(f"cannot reach the shared store {url}: {exc}") from None
    pool = ConnectionPool(url, min_size=1, max_size=size, open=False, kwargs={"autocommit": True})
    try:
        pool.open(wait=True, timeout=30)
    except psycopg.Error as exc:
        pool.close()
        raise StateError(f"cannot reach the shared store {url}: {exc}") from None
    return pool


def migrations() -> list[tuple[int, str, str]]:
    """Every migration shipped with batchwan: (number, file name, SQL), in order."""
    folder = resources.files("batchwan.store") / "migrations"
    found = []
    for item in folder.iterdir():
        if item.name.endswith(".sql"):
            found.append((int(item.name.split("_", 1)[0]), item.name, item.read_text("utf-8")))
    return sorted(found)


def migrate(conn: psycopg.Connection[Any]) -> None:
    """Apply the migrations this database has not seen yet, each in its own transaction."""
    cur = conn.cursor(row_factory=tuple_row)
    cur.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
    try:
        cur.execute(
            "CREATE TABLE IF NOT EXISTS bw_schema (version INTEGER PRIMARY KEY, "
            "name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        done = {v for (v,) in cur.execute("SELECT version FROM bw_schema")}
        for number, name, sql in migrations():
            if number in done:
                continue
            with conn.transaction():
                cur.execute(sql.encode())
                cur.execute("INSERT INTO bw_schema (version, name) VALUES (%s, %s)", (number, name))
    finally:
        cur.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))


def write_pointer(run_dir: Path, url: str, run: str) -> None:
    """Leave in the run folder where its record is, so status and report find it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"store": url, "run": run}, indent=2) + "\n"
    (run_dir / POINTER_FILE).write_text(text, encoding="utf-8")


def read_pointer(run_dir: Path) -> dict[str, Any] | None:
    """The shared store a run folder points at, or None for a folder with its own state.db."""
    path = run_dir / POINTER_FILE
    if not path.is_file():
        return None
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StateError(f"{path}: cannot be read: {exc}") from None
    if not isinstance(found, dict) or not is_postgres(found.get("store")) or not found.get("run"):
        raise StateError(f"{path}: does not say which shared store holds this run")
    return found
