"""Each runner's lease on a shared run: registered, renewed from a thread, handed back.

A runner whose lease has run out is dead: the others adopt its accepted tasks (they poll and
download them) and turn its rows caught mid-send into ``unknown``, never sent again unasked.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from batchwan.store.schema import LOST_ANSWER

log = logging.getLogger(__name__)

#: How long a runner's lease lasts without a heartbeat; renewed every third of it.
LEASE_SECONDS = float(os.environ.get("BATCHWAN_LEASE_SECONDS", "15"))

Connect = Callable[[], AbstractContextManager[Any]]

_REGISTER = (
    "INSERT INTO bw_runners (run, runner, host, pid, lease) "
    "VALUES (%s, %s, %s, %s, now() + make_interval(secs => %s))"
)


def register(conn: Any, run: str, runner: str) -> None:
    """Put this runner in the run's list of live runners."""
    conn.execute(_REGISTER, (run, runner, socket.gethostname(), os.getpid(), LEASE_SECONDS))


class Heartbeat:
    """Renews one runner's lease from its own thread until stopped."""

    def __init__(self, connect: Connect, run: str, runner: str) -> None:
        self._connect, self._run, self._runner = connect, run, runner
        self.stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="batchwan-lease", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop renewing (the lease then runs out unless handed back)."""
        self.stopped.set()
        self._thread.join(timeout=LEASE_SECONDS)

    def _beat(self) -> None:
        while not self.stopped.wait(LEASE_SECONDS / 3):
            try:
                with self._connect() as conn:
                    renewed = conn.execute(
                        "UPDATE bw_runners SET lease = now() + make_interval(secs => %s) "
                        "WHERE run = %s AND runner = %s",
                        (LEASE_SECONDS, self._run, self._runner),
                    ).rowcount
                    if not renewed:  # taken for dead (a long pause): come back, say so
                        log.warning("this runner's lease had run out; its rows may be adopted")
                        register(conn, self._run, self._runner)
            except Exception as exc:  # the database may come back: keep trying
                log.warning("could not renew this runner's lease: %s", exc)


def hand_back(conn: Any, run: str, runner: str) -> None:
    """A clean exit: rows still mid-send become unknown, running tasks go to whoever is next."""
    with conn.transaction():
        # Its rows locked in key order first, as every statement that locks many rows of the
        # run does: two transactions locking the same rows in different orders deadlock.
        conn.execute(
            "SELECT key FROM bw_tasks WHERE run = %s AND owner = %s ORDER BY key FOR UPDATE",
            (run, runner),
        )
        conn.execute(
            "UPDATE bw_tasks SET sending = FALSE, status = 'unknown', error = %s, owner = NULL "
            "WHERE run = %s AND owner = %s AND sending",
            (LOST_ANSWER, run, runner),
        )
        conn.execute(
            "UPDATE bw_tasks SET owner = NULL WHERE run = %s AND owner = %s", (run, runner)
        )
        conn.execute("DELETE FROM bw_runners WHERE run = %s AND runner = %s", (run, runner))


def adopt(conn: Any, run: str, runner: str) -> tuple[int, int]:
    """Take over the rows of runners whose lease ran out: (rows now unknown, rows adopted)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (run,))
        expired = "SELECT runner FROM bw_runners WHERE run = %s AND lease < now()"
        dead = [r["runner"] for r in conn.execute(expired, (run,))]
        conn.execute(  # the rows to take over, locked in key order first (see hand_back)
            "SELECT key FROM bw_tasks WHERE run = %s AND (owner IS NULL OR owner = ANY(%s)) "
            "AND (sending OR status = 'running' OR (status = 'succeeded' AND video_file IS NULL "
            "AND video_url IS NOT NULL)) ORDER BY key FOR UPDATE",
            (run, dead),
        )
        lost = conn.execute(
            "UPDATE bw_tasks SET sending = FALSE, status = 'unknown', error = %s, owner = NULL "
            "WHERE run = %s AND sending AND (owner IS NULL OR owner = ANY(%s))",
            (LOST_ANSWER, run, dead),
        ).rowcount
        adopted = conn.execute(
            "UPDATE bw_tasks SET owner = %s WHERE run = %s "
            "AND (owner IS NULL OR owner = ANY(%s)) AND NOT sending AND (status = 'running' "
            "OR (status = 'succeeded' AND video_file IS NULL AND video_url IS NOT NULL))",
            (runner, run, dead),
        ).rowcount
        conn.execute("DELETE FROM bw_runners WHERE run = %s AND runner = ANY(%s)", (run, dead))
    if lost or adopted:
        log.warning("took over %d task(s) from runners that stopped; %d row(s) they were "
                    "sending are now `unknown`", adopted, lost)  # fmt: skip
    return lost, adopted
