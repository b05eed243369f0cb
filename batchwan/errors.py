"""The whole exception tree of batchwan.

::

    BatchwanError
    ├── InputError          the sheet or job file cannot be used at all          -> exit 2
    ├── ApiError            carries task id, HTTP status, provider detail, trace id
    │   ├── TransportError      no usable answer; says whether the request may have been received
    │   │   └── BadAnswer           an answer holding a value that is refused (id, size, depth)
    │   ├── ServerError         5xx; 500/502/504 may have been accepted, 503 was not
    │   ├── RateLimited         429; .retry_after in seconds when the provider said
    │   ├── Rejected            4xx for this row (400, 404, 409, 423, 451, ...)
    │   │   ├── TaskNotFound        404 on a task lookup
    │   │   └── VideoRefused        the video's link or content is refused: the row fails
    │   └── AccountError        401/402/403: nothing else will work either      -> exit 4
    ├── BudgetExceeded      --max-cost reached                                   -> exit 4
    └── StateError          the run folder is damaged or belongs to another sheet
        ├── RunLocked           another run holds this run folder                 -> exit 3
        └── DiskFull            the disk filled up during a run                   -> exit 1

Every ``ApiError`` answers one question the runner lives by: ``safe_to_resend``. It is true only
when the provider surely did not accept the request (429, 503, connection refused, dropped before
the body was sent), or when the request is a read (poll, download) and so harmless to repeat.
"""

from __future__ import annotations

from typing import Any


class BatchwanError(Exception):
    """Anything batchwan raises on purpose."""


class InputError(BatchwanError):
    """The sheet or job file cannot be used at all."""


class StateError(BatchwanError):
    """The run folder is damaged or belongs to another sheet."""


class RunLocked(StateError):
    """Another ``batchwan run`` holds this run folder."""


class BudgetExceeded(BatchwanError):
    """The next create would take the run's committed spend over ``--max-cost``."""


class ApiError(BatchwanError):
    """The provider's API did not do what was asked."""

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        detail: str | None = None,
        task_id: str | None = None,
        trace_id: str | None = None,
        safe_to_resend: bool = False,
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.detail = detail
        self.task_id = task_id
        self.trace_id = trace_id
        self.safe_to_resend = safe_to_resend


class TransportError(ApiError):
    """No usable answer: timeout, refused or dropped connection, or a body that is not JSON."""


class ServerError(ApiError):
    """The provider answered 5xx."""


class RateLimited(ApiError):
    """The provider answered 429; the request was not accepted."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, safe_to_resend=True, **kwargs)
        self.retry_after = retry_after


class Rejected(ApiError):
    """The provider refused this request (a 4xx that is about this row only)."""


class TaskNotFound(Rejected):
    """The provider does not know this task id (404 on a lookup)."""


class AccountError(ApiError):
    """The key, balance or permission was refused (401, 402, 403): stop the whole run."""


class BadAnswer(TransportError):
    """The provider answered, but with a value batchwan will not use (unsafe id, too big, too deep).

    For a create it may still have made the task, so it is not safe to resend.
    """


class VideoRefused(Rejected):
    """The video's link or content is refused (a private address, not an MP4, too big).

    Asking again would get the same answer: the row fails with the reason.
    """


class DiskFull(StateError):
    """The run folder's disk is full: the record or a video could not be written."""
