"""Run one module as ``__main__`` and write what it cost: CPU, peak memory, bytes written.

    python -m bench.measured FIGURES.json MODULE [ARGS...]

The figures come from inside the child (``/proc/self/io`` is only readable while it lives),
so the parent learns the bytes the command itself wrote, threads included.
"""

from __future__ import annotations

import json
import resource
import runpy
import sys
from pathlib import Path


def _io_counters() -> dict[str, int]:
    try:
        text = Path("/proc/self/io").read_text(encoding="ascii")
    except OSError:  # not Linux: the byte counts are simply absent
        return {}
    pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {name.strip(): int(value) for name, value in pairs}


def main() -> None:
    """Run the module given on the command line, then record its costs."""
    figures_path, module, *args = sys.argv[1:]
    sys.argv = [module, *args]
    code: int | str | None = 0
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code
    usage = resource.getrusage(resource.RUSAGE_SELF)
    io = _io_counters()
    figures = {
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # KiB on Linux
        "write_bytes": io.get("write_bytes"),
        "wchar": io.get("wchar"),
    }
    Path(figures_path).write_text(json.dumps(figures), encoding="utf-8")
    sys.exit(code)


if __name__ == "__main__":
    main()
