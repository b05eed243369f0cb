"""The name the pipeline and the CLI have used for the run folder's record: ``SqliteStore``."""

from batchwan.store.sqlite import SqliteStore as Ledger

__all__ = ["Ledger"]
