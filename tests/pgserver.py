"""A real PostgreSQL server for the tests: initdb into a temporary folder, a Unix socket only.

initdb refuses to run as root, so as root (here and in CI) the server runs as the ``postgres``
user with its folder handed over to it. Without PostgreSQL the tests that need it are skipped,
with the reason, except in CI (``CI=true``), where a missing server is a failure.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass(frozen=True)
class PgServer:
    """A running server: where its socket is, and a URL per database."""

    socket_dir: Path
    user: str

    def url(self, database: str = "postgres") -> str:
        """A libpq URL for ``database`` on this server (no password: trust on the socket)."""
        return f"postgresql://{self.user}@/{database}?host={self.socket_dir}"


def find_bindir() -> Path | None:
    """The folder of initdb and pg_ctl: Debian's versioned folder, or the PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _as_server_user() -> dict[str, Any]:
    """subprocess arguments that run the server as an unprivileged user when we are root."""
    if os.geteuid() != 0:
        return {}
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        entry = pwd.getpwnam("nobody")
    return {"user": entry.pw_uid, "group": entry.pw_gid}


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is needed in CI: {reason} (make pg-deps installs it)")
    pytest.skip(f"PostgreSQL not available: {reason} (install the postgresql package)")


@contextlib.contextmanager
def running_server(*, fsync: bool = False) -> Iterator[PgServer]:
    """Start a throwaway server; stop it and remove its folder at the end."""
    bindir = find_bindir()
    if bindir is None:
        _missing("no initdb found in /usr/lib/postgresql/*/bin or on the PATH")
        raise AssertionError("unreachable")
    # Directly under /tmp: the server user must be able to reach its folder, and a socket
    # path must stay under about 100 characters.
    root = Path(
        tempfile.mkdtemp(prefix="batchwan-pg-", dir="/tmp" if Path("/tmp").is_dir() else None)
    )
    who: dict[str, Any] = {**_as_server_user(), "cwd": root}  # a folder the server user may enter
    if "user" in who:
        os.chown(root, who["user"], who["group"])
    data, log = root / "data", root / "server.log"
    user = "batchwan"
    try:
        subprocess.run(
            [bindir / "initdb", "-D", data, "-U", user, "-A", "trust", "-E", "UTF8", "--no-sync"],
            check=True, capture_output=True, **who,
        )  # fmt: skip
        options = f"-k {root} -c listen_addresses='' -c max_connections=200"
        if not fsync:
            options += " -c fsync=off -c synchronous_commit=off"
        subprocess.run(
            [bindir / "pg_ctl", "-D", data, "-o", options, "-l", log, "-w", "-t", "60", "start"],
            check=True, capture_output=True, **who,
        )  # fmt: skip
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or b"").decode(errors="replace").strip()
        if log.is_file():
            detail += "\n" + log.read_text(errors="replace")[-2000:]
        shutil.rmtree(root, ignore_errors=True)
        _missing(f"the server did not start: {detail}")
    try:
        yield PgServer(root, user)
    finally:
        subprocess.run(
            [bindir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"],
            capture_output=True, **who,
        )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One PostgreSQL server for the whole test session."""
    with running_server() as server:
        yield server


_counter = iter(range(1, 1 << 30))


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A fresh, empty database on the session's server, as a URL."""
    import psycopg

    name = f"t{os.getpid()}_{next(_counter)}"
    with psycopg.connect(pg_server.url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return pg_server.url(name)
