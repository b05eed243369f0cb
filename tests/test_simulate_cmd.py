"""`batchwan simulate`: a real process on loopback, driven with curl, and its refusals."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from simhelpers import body

from batchwan.cli import main
from batchwan.sim.simulator import SimConfig, serve_in_thread

REPO = Path(__file__).resolve().parent.parent
GENERATION = "/vendors/alibaba/v1/wan2.5-i2v-preview/generation"
KEY = "sk-sim-key-for-tests"


@contextmanager
def simulate_process(
    *args: str, env: dict[str, str] | None = None
) -> Iterator[tuple[Any, str, list[str]]]:
    """`batchwan simulate --port 0 ...` as a subprocess; yields it, its URL and its first lines."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "batchwan", "simulate", "--port", "0", *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = _read_announcement(proc)
        yield proc, lines[-1].split("=", 1)[1], lines
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def _read_announcement(proc: Any) -> list[str]:
    """Stdout lines up to `export BATCHWAN_BASE_URL=...`, waiting at most 20 s for them."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in iter(proc.stdout.readline, ""):
            lines.put(line.rstrip("\n"))
            if line.startswith("export "):
                return

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            seen.append(lines.get(timeout=deadline - time.monotonic()))
        except queue.Empty:
            break
        if seen[-1].startswith("export BATCHWAN_BASE_URL="):
            return seen
    proc.kill()
    raise AssertionError(
        f"simulator did not announce its URL: {seen} {proc.communicate(timeout=10)}"
    )


def _stop(proc: Any) -> tuple[int, str, str]:
    """Ctrl-C the process and collect its exit code and output (bounded)."""
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    return proc.returncode, out, err


def _post(url: str, payload: dict[str, Any], key: str | None = None) -> tuple[int, Any]:
    """POST JSON with curl when it exists, else with urllib; returns status and JSON body."""
    data = json.dumps(payload)
    auth = [f"Authorization: Bearer {key}"] if key else []
    curl = shutil.which("curl")
    if curl:
        headers = [arg for h in ["Content-Type: application/json", *auth] for arg in ("-H", h)]
        done = subprocess.run(
            [
                curl,
                "-sS",
                "-m",
                "10",
                "-w",
                "\n%{http_code}",
                "-X",
                "POST",
                *headers,
                "-d",
                data,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        )
        text, status = done.stdout.rsplit("\n", 1)
        return int(status), json.loads(text)
    request = urllib.request.Request(url, data=data.encode(), method="POST")
    for header in ["Content-Type: application/json", *auth]:
        name, value = header.split(": ", 1)
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def test_simulate_process_serves_create_poll_and_video() -> None:
    """A real `batchwan simulate`: curl create -> 202, task completes, video is an MP4."""
    args = ("--seed", "3", "--status-vocabulary", "mulerouter")
    with simulate_process(*args) as (proc, base, _):
        status, created = _post(base + GENERATION, body())
        assert status == 202
        task_id = created["task_info"]["id"]
        for _ in range(50):  # completes at once with the default timings
            answer = _get_json(f"{base}{GENERATION}/{task_id}")
            if answer["task_info"]["status"] == "completed":
                break
        assert answer["task_info"]["status"] == "completed"
        with urllib.request.urlopen(answer["videos"][0], timeout=10) as r:
            video = r.read()
        assert video[4:8] == b"ftyp"
        assert _get_json(base + "/_sim/stats")["downloads"] == 1
        code, out, err = _stop(proc)
    assert code == 0, err
    assert "simulator stopped" in out
    assert "Traceback" not in err


def test_simulate_process_requires_the_key_from_the_env_var() -> None:
    """With --key-env the key comes from that variable; it is required and never printed."""
    env = {"SIM_TEST_KEY": KEY}
    with simulate_process("--key-env", "SIM_TEST_KEY", env=env) as (proc, base, lines):
        assert _post(base + GENERATION, body())[0] == 401
        assert _post(base + GENERATION, body(), key="wrong")[0] == 401
        assert _post(base + GENERATION, body(), key=KEY)[0] == 202
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert KEY not in "".join(lines) + out + err
    assert "$SIM_TEST_KEY" in lines[0]


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--host", "0.0.0.0"], {}, "refusing to listen on 0.0.0.0"),
        (["--host", "192.168.1.20"], {}, "pass --allow-remote"),
        (["--key-env", "SIM_UNSET_VAR"], {}, "environment variable SIM_UNSET_VAR is not set"),
        (["--rate-500", "0.7", "--rate-503", "0.7"], {}, "add up to more than 1"),
    ],
)
def test_simulate_refuses_to_start(args: list[str], env: dict[str, str], message: str) -> None:
    """Bad starts exit 2 with a sentence that says what to change."""
    result = CliRunner().invoke(main, ["simulate", *args], env=env)
    assert result.exit_code == 2
    assert message in result.output


def test_simulate_reports_a_busy_port() -> None:
    """A port in use is a clear error (exit 2), not a traceback."""
    with serve_in_thread(SimConfig()) as running:
        result = CliRunner().invoke(main, ["simulate", "--port", str(running.port)])
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{running.port}" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_simulate_help_has_an_example_and_every_fault_option() -> None:
    """--help shows an example and one option per fault and timing setting."""
    result = CliRunner().invoke(main, ["simulate", "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output
    for field in SimConfig.__dataclass_fields__:
        if field != "api_key":
            assert "--" + field.replace("_", "-") in result.output
