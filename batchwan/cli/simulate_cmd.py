"""`batchwan simulate`: serve the simulated provider until interrupted."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import os
import signal
from collections.abc import Callable
from typing import Any, NoReturn

import click

from batchwan.cli import exit_codes
from batchwan.cli.common import fail
from batchwan.sim.simulator import RunningSimulator, SimConfig, serve

_RATE = click.FloatRange(0.0, 1.0)
_SECONDS = click.FloatRange(min=0.0)

#: One option per SimConfig field (except the key, which only comes from the environment).
_SETTINGS: tuple[tuple[str, Any, str], ...] = (
    ("seed", int, "seed of every random decision: the same seed and requests, the same faults"),
    ("pending_seconds", _SECONDS, "seconds each task stays pending"),
    ("processing_seconds", _SECONDS, "then seconds in processing before it ends"),
    ("fail_rate", _RATE, "share of tasks that end failed (errors 3001-3005)"),
    ("no_video_rate", _RATE, "share of tasks that end completed but with no videos"),
    ("rate_429", _RATE, "share of creates answered 429 with Retry-After"),
    ("rate_429_bare", _RATE, "share of creates answered 429 without Retry-After"),
    ("retry_after_seconds", _SECONDS, "the Retry-After that 429s carry"),
    ("retry_after_http_date", bool, "send Retry-After as an HTTP date instead of seconds"),
    ("rate_500", _RATE, "share of creates answered 500 (the task may have been made)"),
    ("rate_502", _RATE, "share of creates answered 502 (the task may have been made)"),
    ("rate_503", _RATE, "share of creates answered 503 (never made)"),
    ("rate_504", _RATE, "share of creates answered 504 (the task may have been made)"),
    ("error_after_create_rate", _RATE, "of the 500/502/504 creates, the share that made a task"),
    ("drop_before_rate", _RATE, "share of creates whose connection drops before the task exists"),
    ("drop_after_rate", _RATE, "share of creates whose connection drops after the task exists"),
    ("slow_rate", _RATE, "share of answers delayed by --slow-seconds"),
    ("slow_seconds", _SECONDS, "delay of a slow answer"),
    ("not_found_polls", click.IntRange(min=0), "the first N gets of each new task answer 404"),
    ("poll_fault_rate", _RATE, "share of gets answered 500 or 503"),
    ("max_in_flight", click.IntRange(min=1), "most unfinished tasks; creates beyond get 429"),
    ("max_creates_per_second", click.IntRange(min=1), "most creates in any 1 s; more get 429"),
    ("hold", bool, "keep tasks processing until POST /_sim/release"),
    (
        "status_vocabulary",
        click.Choice(["mixed", "mulerouter", "alibaba"]),
        "status words: pending/processing/completed, queued/running/succeeded, or mixed",
    ),
)


def _setting_options(command: Callable[..., None]) -> Callable[..., None]:
    defaults = {f.name: f.default for f in dataclasses.fields(SimConfig)}
    for name, kind, text in reversed(_SETTINGS):
        flag = "--" + name.replace("_", "-")
        if kind is bool:
            command = click.option(flag, name, is_flag=True, help=text)(command)
        else:
            command = click.option(
                flag, name, type=kind, default=defaults[name], show_default=True, help=text
            )(command)
    return command


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8808, show_default=True, help="0: any free"
)
@click.option(
    "--key-env",
    metavar="VAR",
    help="require `Authorization: Bearer <key>`, the key read from environment variable VAR",
)
@click.option("--allow-remote", is_flag=True, help="allow a --host that is not loopback")
@click.option(
    "--unserved-models",
    multiple=True,
    metavar="MODEL",
    help="answer 404 at this model's path, as a provider that does not serve it (repeatable)",
)
@_setting_options
def simulate(
    host: str, port: int, key_env: str | None, allow_remote: bool, **settings: Any
) -> None:
    """Serve the simulated provider API on loopback until Ctrl-C.

    It answers create and get as the provider does, serves small MP4s as the videos, and
    injects the provider's faults at the rates given, seeded so a run can be repeated. Counts
    of what it saw are at GET /_sim/stats.

    \b
    Example:
      batchwan simulate --port 8808 --fail-rate 0.1 --rate-429 0.05 --processing-seconds 5
      export BATCHWAN_BASE_URL=http://127.0.0.1:8808
      batchwan run samples/demo.csv
    """
    if not allow_remote and not _is_loopback(host):
        _stop(
            f"refusing to listen on {host}: the simulator has no real authentication and shows "
            "every request it received, prompts included, at /_sim/tasks to whoever "
            "connects, so it stays on loopback (127.0.0.1); pass --allow-remote if other "
            "machines must reach it"
        )
    api_key = None
    if key_env:
        api_key = os.environ.get(key_env, "")
        if not api_key:
            _stop(f"--key-env {key_env}: environment variable {key_env} is not set or empty")
    try:
        config = SimConfig(api_key=api_key, **settings)
    except ValueError as exc:
        _stop(f"cannot simulate that: {exc}")
    try:
        asyncio.run(_serve_until_stopped(config, host, port, key_env))
    except OSError as exc:
        _stop(f"cannot listen on {host}:{port}: {exc.strerror or exc} (try another --port, or 0)")
    except KeyboardInterrupt:  # Ctrl-C before the signal handlers were in place
        pass
    click.echo("simulator stopped")


async def _serve_until_stopped(
    config: SimConfig, host: str, port: int, key_env: str | None
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on every platform
            loop.add_signal_handler(signum, stop.set)
    async with serve(config, host, port) as running:
        _announce(running, key_env)
        await stop.wait()


def _announce(running: RunningSimulator, key_env: str | None) -> None:
    url = running.base_url
    needs = f"; it wants the key in ${key_env}" if key_env else ""
    click.echo(
        f"simulator serving {url} (seed {running.sim.config.seed}); stats at {url}/_sim/stats"
        f"{needs}; Ctrl-C stops it"
    )
    click.echo(f"export BATCHWAN_BASE_URL={url}")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _stop(message: str) -> NoReturn:
    fail(message, exit_codes.CANNOT_START)
