"""The Python API: ``run``, ``arun``, ``validate`` and ``results``, each returning a DataFrame.

These are doors into the same core as the command line (``batchwan.pipeline``). They never
print, exit the process, or change process-wide state (no signal handlers, no switch interval,
no umask, no logging handlers: batchwan logs to the ``batchwan`` logger like any library).
Errors come from batchwan's error tree.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from batchwan.errors import (
    AccountError,
    BatchwanError,
    BudgetExceeded,
    InputError,
    Rejected,
    TransportError,
)
from batchwan.events import Event
from batchwan.pipeline import Pipeline, Prepared, RunResult, RunSettings, check_source, prepare
from batchwan.pool.runner import StopReason
from batchwan.values import DEFAULT_BASE_URL

if TYPE_CHECKING:
    import pandas as pd

T = TypeVar("T")

#: Where the key is read from when ``api_key`` is not given.
KEY_VARIABLE = "MULEROUTER_API_KEY"
BASE_URL_VARIABLE = "BATCHWAN_BASE_URL"


def run(
    source: str | os.PathLike[str] | pd.DataFrame | Sequence[Mapping[str, Any]],
    *,
    out: str | os.PathLike[str] | None = None,
    simulate: bool = False,
    concurrency: int | None = None,
    rate: float | None = None,
    poll_interval: float | None = None,
    max_cost: float | None = None,
    model: str | None = None,
    base_url: str | None = None,
    image_root: str | os.PathLike[str] | None = None,
    fix_images: bool = False,
    limit: int | None = None,
    resubmit_unknown: bool = False,
    retry_failed: bool = False,
    store: str | None = None,
    group_by: str | Sequence[str] | None = None,
    tab: str | None = None,
    include_hidden: bool | None = None,
    allow_repeat: bool | None = None,
    wait: bool = True,
    download: bool = True,
    api_key: str | None = None,
    on_event: Callable[[Event], None] | None = None,
) -> pd.DataFrame:
    """Validate, submit, follow and download every row of ``source``; the results as a DataFrame.

    Works in a notebook cell too: the run goes on a worker thread with a loop of its own, and
    ``on_event`` is called there. Ctrl-C stops new creates, records what is on the wire and
    raises KeyboardInterrupt; running it again continues the same run folder.
    """
    options = dict(locals())
    prepared, settings = _prepare(options)
    pipeline = Pipeline(prepared, settings, on_event=on_event)
    return _frame(_in_thread(pipeline), prepared)


async def arun(
    source: str | os.PathLike[str] | pd.DataFrame | Sequence[Mapping[str, Any]],
    *,
    out: str | os.PathLike[str] | None = None,
    simulate: bool = False,
    concurrency: int | None = None,
    rate: float | None = None,
    poll_interval: float | None = None,
    max_cost: float | None = None,
    model: str | None = None,
    base_url: str | None = None,
    image_root: str | os.PathLike[str] | None = None,
    fix_images: bool = False,
    limit: int | None = None,
    resubmit_unknown: bool = False,
    retry_failed: bool = False,
    store: str | None = None,
    group_by: str | Sequence[str] | None = None,
    tab: str | None = None,
    include_hidden: bool | None = None,
    allow_repeat: bool | None = None,
    wait: bool = True,
    download: bool = True,
    api_key: str | None = None,
    on_event: Callable[[Event], None] | None = None,
) -> pd.DataFrame:
    """``run`` for code already inside an event loop: the run goes on the caller's loop."""
    options = dict(locals())
    prepared, settings = await asyncio.to_thread(_prepare, options)
    pipeline = Pipeline(prepared, settings, on_event=on_event)
    return _frame(await pipeline.run(), prepared)


def validate(
    source: str | os.PathLike[str] | pd.DataFrame | Sequence[Mapping[str, Any]],
    *,
    image_root: str | os.PathLike[str] | None = None,
    fix_images: bool = False,
    model: str | None = None,
) -> pd.DataFrame:
    """Every problem of every row of ``source``: a DataFrame of row, id, column, message.

    Sends nothing and writes nothing; an empty frame means every row is valid.
    """
    import pandas as pd

    table = _is_table(source)
    overrides = _overrides({"image_root": image_root, "model": model})
    given = source if table else Path(source)  # type: ignore[arg-type]  # narrowed by _is_table
    prepared = check_source(given, overrides, fix_images=fix_images)
    issues = [(issue, row.row_id) for row in prepared.rows for issue in row.issues]
    return pd.DataFrame(
        {
            "row": pd.array([issue.row for issue, _ in issues], dtype="Int64"),
            "id": pd.array([row_id for _, row_id in issues], dtype=pd.StringDtype()),
            "column": pd.array([issue.column for issue, _ in issues], dtype=pd.StringDtype()),
            "message": pd.array([issue.message for issue, _ in issues], dtype=pd.StringDtype()),
        }
    )


def results(run_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """The rows of a run folder as a typed DataFrame, read from its record alone (no network)."""
    import json

    from batchwan.outputs.frame import results_frame
    from batchwan.store.records import read_meta, read_records

    folder = Path(run_dir)
    records = read_records(folder)
    return results_frame(records, json.loads(read_meta(folder).get("columns", "[]")))


# -- the parts ---------------------------------------------------------------------------------

_SPEC_OPTIONS = (
    "out", "concurrency", "rate", "poll_interval", "max_cost", "model", "image_root", "limit",
    "store", "group_by", "tab", "include_hidden", "allow_repeat",
)  # fmt: skip


def _is_table(source: object) -> bool:
    return not isinstance(source, str | os.PathLike)


#: The numbers a keyword may take, as the command's options allow: (least, most, whole number).
_RANGES: dict[str, tuple[float, float | None, bool]] = {
    "concurrency": (1, 512, True),
    "rate": (0.01, None, False),
    "poll_interval": (0.01, None, False),
    "max_cost": (0, None, False),
    "limit": (1, None, True),
}


def _check_number(name: str, value: Any) -> None:
    least, most, whole = _RANGES[name]
    kind = int if whole else int | float
    if isinstance(value, bool) or not isinstance(value, kind) or value != value:  # NaN
        raise InputError(f"{name}={value!r}: must be a {'whole ' if whole else ''}number")
    if value < least or (most is not None and value > most):
        span = f"{least:g} to {most:g}" if most is not None else f"at least {least:g}"
        raise InputError(f"{name}={value!r}: must be {span}")


def _overrides(options: Mapping[str, Any]) -> dict[str, Any]:
    """The job spec's fields from the keywords, checked: paths as Paths, group_by a tuple."""
    given = {name: options[name] for name in _SPEC_OPTIONS if options.get(name) is not None}
    for name in _RANGES.keys() & given.keys():
        _check_number(name, given[name])
    for name in ("out", "image_root"):
        if name in given:
            given[name] = Path(given[name])
    if "group_by" in given:
        from batchwan.outputs.groups import parse_group_by

        given["group_by"] = parse_group_by(given["group_by"])
    if "image_root" in given and not given["image_root"].is_dir():
        raise InputError(f"image_root={str(given['image_root'])!r}: no such folder")
    return given


def _prepare(options: Mapping[str, Any]) -> tuple[Prepared, RunSettings]:
    source = options["source"]
    source = Path(source) if not _is_table(source) else source
    key = options["api_key"] or os.environ.get(KEY_VARIABLE) or None
    if not (options["simulate"] or key):
        raise InputError(f"no API key: set {KEY_VARIABLE}, pass api_key=..., or try simulate=True")
    url = options["base_url"] or os.environ.get(BASE_URL_VARIABLE) or DEFAULT_BASE_URL
    settings = RunSettings(
        base_url=url.rstrip("/"), api_key=key, simulate=options["simulate"],
        wait=options["wait"], download=options["download"],
        resubmit_unknown=options["resubmit_unknown"], retry_failed=options["retry_failed"],
        fix_images=options["fix_images"],
    )  # fmt: skip
    overrides = _overrides(options)
    prepared = prepare(
        source, overrides, simulate=settings.simulate, fix_images=settings.fix_images,
        settings=settings,
    )  # fmt: skip
    return prepared, settings


def _in_thread(pipeline: Pipeline) -> RunResult:
    """Run the pipeline on a worker thread with a loop of its own; Ctrl-C asks it to stop.

    A thread even when no loop is running here: asyncio.run on this thread would install its
    own SIGINT handler, which is process-wide state.
    """
    return _call_in_thread(pipeline.run, on_interrupt=pipeline.stop, on_second=pipeline.cancel)


def _call_in_thread(
    work: Callable[[], Coroutine[Any, Any, T]],
    *,
    on_interrupt: Callable[[], None] = lambda: None,
    on_second: Callable[[], None] = lambda: None,
) -> T:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = asyncio.run(work())
        except BaseException as exc:  # handed to the caller's thread, raised there
            box["error"] = exc

    thread = threading.Thread(target=target, name="batchwan-run", daemon=True)
    thread.start()
    interrupted = 0
    while thread.is_alive():
        try:
            thread.join(0.2)
        except KeyboardInterrupt:
            interrupted += 1
            (on_interrupt if interrupted == 1 else on_second)()
    if "error" in box:
        raise box["error"]
    if interrupted:
        raise KeyboardInterrupt
    result: T = box["result"]
    return result


def _frame(result: RunResult, prepared: Prepared) -> pd.DataFrame:
    """The results as a frame, or the error that stopped the run early."""
    from batchwan.outputs.frame import results_frame

    outcome = result.outcome
    if outcome.stop is None:
        return results_frame(result.records, prepared.extra_columns)
    message = (
        f"{outcome.message or outcome.stop.value}; "
        f"the rows so far: batchwan.results({str(result.run_dir)!r})"
    )
    if outcome.stop is StopReason.ACCOUNT:
        raise AccountError(message)
    if outcome.stop is StopReason.BUDGET:
        raise BudgetExceeded(message)
    if outcome.stop is StopReason.UNREACHABLE:
        raise TransportError(message)
    if outcome.stop is StopReason.NO_ENDPOINT:
        raise Rejected(message, http_status=404)
    raise BatchwanError(message)  # a worker failed: the record is saved, the run stopped
