"""What the commands share: the environment, logging, and turning errors into exit codes."""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn, TextIO

import click
from tqdm import tqdm

from batchwan.cli import exit_codes
from batchwan.errors import BatchwanError, StateError
from batchwan.safe_text import clean
from batchwan.values import DEFAULT_BASE_URL

KEY_VARIABLE = "MULEROUTER_API_KEY"
BASE_URL_VARIABLE = "BATCHWAN_BASE_URL"
STORE_VARIABLE = "BATCHWAN_STORE"


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


def leave(code: int) -> NoReturn:
    """End the command with ``code``: every command exits through here."""
    sys.exit(code)


def echo(message: str, *, err: bool = False, nl: bool = True) -> None:
    """click.echo with escape sequences and control characters removed: text from a sheet or
    the provider must not set the terminal's title or write its clipboard. While a progress bar
    is drawn, the text is printed above it instead of onto it."""
    text = clean(message)
    if getattr(tqdm, "_instances", None):  # tqdm's own registry of the bars on screen
        tqdm.write(text, file=sys.stderr if err else sys.stdout, end="\n" if nl else "")
    else:
        click.echo(text, err=err, nl=nl)


def fail(message: str, code: int) -> NoReturn:
    """Say what went wrong on stderr and exit with ``code``."""
    echo(f"Error: {message}", err=True)
    leave(code)


@contextmanager
def exit_on_errors() -> Iterator[None]:
    """Turn the errors a person can act on into a message and the interface's exit code."""
    try:
        yield
    except BatchwanError as exc:
        code = exit_codes.for_error(exc)
        if code is None:
            raise
        fail(str(exc), code)


class SafeFormatter(logging.Formatter):
    """Belt and braces: no log line ever carries the key, in any letter case, whoever wrote
    it; and no line carries escape sequences or line breaks from a sheet or the provider, so
    one event stays one line (a traceback keeps its own lines)."""

    def __init__(self, fmt: str, datefmt: str | None = None, *, key: str | None) -> None:
        super().__init__(fmt, datefmt)
        # A real key is long; scrubbing a few characters would only mangle every line.
        self._key = re.compile(re.escape(key), re.IGNORECASE) if key and len(key) >= 8 else None
        self._second: tuple[int, str | None] | None = None
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        # A run logs thousands of lines a second: the time is formatted once per second.
        second = int(record.created)
        if self._second != (second, datefmt):
            self._second = (second, datefmt)
            self._stamp = time.strftime(datefmt or self.default_time_format, self.converter(second))
        if datefmt or not self.default_msec_format:
            return self._stamp
        return self.default_msec_format % (self._stamp, record.msecs)

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = clean(record.message, keep_newlines=False)
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        text = clean(super().format(record))
        return self._key.sub("[key]", text) if self._key else text


class TqdmHandler(logging.StreamHandler[TextIO]):
    """Console log lines printed above a progress bar, never glued onto it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=self.stream)
        except Exception:  # logging's own rule: a failing handler must not break the program
            self.handleError(record)


class RunLogHandler(logging.FileHandler):
    """run.log, written by a thread of its own: each line reaches the file within a moment.

    A write per line on the loop's thread would cost a system call for each of the three lines
    every row logs, and each call hands the GIL to another thread. So lines are written within
    ``FLUSH_SECONDS``, warnings and errors at once. The record (state.db), not run.log, is what
    a rerun trusts; a run killed outright loses at most its last ``FLUSH_SECONDS`` of lines.
    """

    FLUSH_SECONDS = 0.2

    def __init__(self, path: Path) -> None:
        super().__init__(path, encoding="utf-8")
        self._flushing = False  # True only while the flusher (or close) writes the buffer
        self._wake = threading.Event()  # a line must be written now
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_soon, name="batchwan-log", daemon=True)
        self._flusher.start()

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)  # ends with self.flush(), which only buffers
        if record.levelno >= logging.WARNING:
            self._wake.set()

    def flush(self) -> None:
        if self._flushing:
            super().flush()

    def _write_out(self) -> None:
        self.acquire()
        try:
            self._flushing = True
            self.flush()
        finally:
            self._flushing = False
            self.release()

    def _flush_soon(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.FLUSH_SECONDS)
            self._wake.clear()
            self._write_out()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._flusher.join()
        self._write_out()
        super().close()


def setup_logging(run_log: Path | None, *, console_level: int | None) -> list[logging.Handler]:
    """Log everything to run.log with times; to the console only at ``console_level``.

    Returns the handlers added, for ``close_logging``.
    """
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    # No line shows the process or thread; each record need not look them up (a command owns
    # its process, as with the switch interval; the library never changes these).
    logging.logProcesses = logging.logThreads = logging.logMultiprocessing = False
    logging._srcfile = None  # nor the caller's file and line: no stack walk for each record
    key = api_key()
    added: list[logging.Handler] = []
    if run_log is not None:
        run_log.parent.mkdir(parents=True, exist_ok=True)
        file_handler = RunLogHandler(run_log)
        file_handler.setFormatter(
            SafeFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", key=key)
        )
        added.append(file_handler)
    if console_level is not None:
        console = TqdmHandler(sys.stderr)
        console.setLevel(console_level)
        console.setFormatter(SafeFormatter("%(asctime)s %(message)s", "%H:%M:%S", key=key))
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
