"""batchwan: turn a spreadsheet into Wan video generations, safely and resumably."""

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from batchwan.errors import (
    AccountError,
    ApiError,
    BatchwanError,
    BudgetExceeded,
    InputError,
    RateLimited,
    Rejected,
    RunLocked,
    ServerError,
    StateError,
    TaskNotFound,
    TransportError,
)
from batchwan.values import CheckedRow, JobSpec, RowIssue, RowRecord, SheetRow, Status, TaskInfo

if TYPE_CHECKING:
    from batchwan.api import arun, results, run, validate

#: The API's functions, imported on first use: `batchwan --help` must not pay for pandas and
#: aiohttp.
_API = ("arun", "results", "run", "validate")

try:
    __version__ = version("batchwan")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = [
    "AccountError",
    "ApiError",
    "BatchwanError",
    "BudgetExceeded",
    "CheckedRow",
    "InputError",
    "JobSpec",
    "RateLimited",
    "Rejected",
    "RowIssue",
    "RowRecord",
    "RunLocked",
    "ServerError",
    "SheetRow",
    "StateError",
    "Status",
    "TaskInfo",
    "TaskNotFound",
    "TransportError",
    "__version__",
    "arun",
    "results",
    "run",
    "validate",
]


def __getattr__(name: str) -> Any:
    if name in _API:
        from batchwan import api

        return getattr(api, name)
    raise AttributeError(f"module 'batchwan' has no attribute {name!r}")
