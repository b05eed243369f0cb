"""batchwan: turn a spreadsheet into Wan 2.5 image-to-video generations, safely and resumably."""

from importlib.metadata import PackageNotFoundError, version

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
]
