"""What the commands share: the environment, logging, and turning errors into exit codes."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from batchwan.cli import exit_codes
from batchwan.errors import DiskFull, InputError, RunLocked, StateError
from batchwan.values import DEFAULT_BASE_URL

KEY_VARIABLE = "MULEROUTER_API_KEY"
BASE_URL_VARIABLE = "BATCHWAN_BASE_URL"


def api_key() -> str | None:
    """The provider key, only ever from the environment (never an option: `ps` shows those)."""
    return os.environ.get(KEY_VARIABLE) or None


def base_url(option: str | None) -> str:
    """--base-url, else $BATCHWAN_BASE_URL, else the provider's own."""
    return (option or os.environ.get(BASE_URL_VARIABLE) or DEFAULT_BASE_URL).rstrip("/")


def no_run_message(run_dir: Path, exc: StateError) -> str:
    """What ``status`` and ``report`` say when RUN_DIR holds no readable run."""
    if (run_dir / "state.db").exists():
        # Damaged or another program's file: starting a run there would fail the same way.
        return f"{exc} (damaged, or not a batchwan run folder)"
    return f"{exc}; start one with: batchwan run SOURCE --out {run_dir}"


def fail(message: str, code: int) -> None:
    """Say what went wrong on stderr and exit with ``code``."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


@contextmanager
def exit_on_errors() -> Iterator[None]:
    """Turn the errors a person can act on into a message and the interface's exit code."""
    try:
        yield
    except DiskFull as exc:  # the run did start: what it sent is kept, rows need attention
        fail(str(exc), exit_codes.ROWS_NEED_ATTENTION)
    except RunLocked as exc:
        fail(str(exc), exit_codes.RUN_LOCKED)
    except (InputError, StateError) as exc:
        fail(str(exc), exit_codes.CANNOT_START)


class _KeyFilter(logging.Filter):
    """Belt and braces: no log line ever carries the key, whoever wrote it."""

    def __init__(self, key: str | None) -> None:
        super().__init__()
        # A real key is long; scrubbing a few characters would only mangle every line.
        self.key = key if key and len(key) >= 8 else None

    def filter(self, record: logging.LogRecord) -> bool:
        if self.key and self.key in record.getMessage():
            record.msg = record.getMessage().replace(self.key, "[key]")
            record.args = None
        return True


def setup_logging(run_log: Path | None, *, console_level: int | None) -> list[logging.Handler]:
    """Log everything to run.log with times; to the console only at ``console_level``.

    Returns the handlers added, for ``close_logging``.
    """
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    key_filter = _KeyFilter(api_key())
    added: list[logging.Handler] = []
    if run_log is not None:
        run_log.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(run_log, encoding="utf-8")
        file_handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        )
        file_handler.addFilter(key_filter)
        added.append(file_handler)
    if console_level is not None:
        console = logging.StreamHandler(sys.stderr)
        console.setLevel(console_level)
        console.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        console.addFilter(key_filter)
        added.append(console)
    for handler in added:
        root.addHandler(handler)
    # aiohttp's access log would repeat every simulator request; it says nothing new.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    return added


def close_logging(handlers: list[logging.Handler]) -> None:
    """Flush and detach the handlers ``setup_logging`` added (tests run many commands)."""
    root = logging.getLogger()
    for handler in handlers:
        root.removeHandler(handler)
        handler.close()
