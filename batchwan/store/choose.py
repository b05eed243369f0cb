"""Pick the store a run's record lives in: the run folder's state.db, or a shared PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from batchwan.errors import InputError, StateError
from batchwan.store.base import Store
from batchwan.store.schema import STATE_FILE


def is_postgres(url: str | None) -> bool:
    """Whether ``--store`` names a PostgreSQL database (the driver is imported only then)."""
    return bool(url) and str(url).startswith(("postgresql://", "postgres://"))


def check_store(url: str | None) -> None:
    """Refuse, before anything is read or sent, a store URL that cannot or must not be used."""
    if not url:
        return
    if not is_postgres(url):
        raise InputError(
            f"--store {url!r}: not a store batchwan knows; leave it out for the run folder's "
            "state.db, or give postgresql://user@host/database"
        )
    from batchwan.store.pgschema import check_url

    check_url(url)


def open_store(run_dir: Path, url: str | None = None) -> Store:
    """The store for ``run_dir``: ``url`` None for state.db, ``postgresql://...`` for shared."""
    if not url:
        from batchwan.store.sqlite import SqliteStore

        return SqliteStore(run_dir)
    check_store(url)
    if (run_dir / STATE_FILE).is_file():
        # Its rows were sent under state.db: a shared record would know none of them.
        raise StateError(
            f"{run_dir} keeps its own record ({STATE_FILE}); a shared store would send its rows "
            "again. Leave out --store for this folder, or choose another --out"
        )
    from batchwan.store.postgres import PostgresStore

    return PostgresStore(url, run_dir)
