"""One exception hierarchy for everything the client raises about the server or a report.

Every error carries ``status`` (the HTTP status, or None when no answer came), ``code`` (the server's
``error`` code, e.g. ``invalid``, ``throttled``, ``run_already_finished``) and ``message`` (the server's
``detail``). The server answers every error with one JSON body, ``{"error", "detail", "fields"?}``
(docs/api.md, Errors); an answer that is not that body (a proxy's HTML 502) still becomes an error here,
with the code ``http_<status>`` and the start of its text as the message. An error of the live feed
carries the socket's ``close_code`` instead of a status.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conflict_monitor_client.reports import Metric

__all__ = [
    "APIError",
    "AuthenticationFailed",
    "Conflict",
    "ConflictMonitorError",
    "ConnectionFailed",
    "FeedClosed",
    "IdempotencyKeyReused",
    "InvalidReport",
    "InvalidRequest",
    "MetricsNotSent",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "RateLimited",
    "RunAlreadyFinished",
    "ServerError",
    "describe_fields",
    "error_from_answer",
]

# A non-JSON body can be a whole HTML page; its start says enough.
_TEXT_LIMIT = 300


class ConflictMonitorError(Exception):
    """Base of every error of this package."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str = "error",
        fields: Mapping[str, Any] | None = None,
        request_id: str | None = None,
        close_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.fields: Mapping[str, Any] = fields or {}
        self.request_id = request_id
        self.close_code = close_code

    def __str__(self) -> str:
        where = f" (HTTP {self.status})" if self.status is not None else ""
        if self.close_code is not None:
            where += f" (close code {self.close_code})"
        text = f"{self.code}{where}: {self.message}"
        if self.fields:
            text += " " + describe_fields(self.fields)
        return text


class InvalidReport(ConflictMonitorError, ValueError):
    """A report or run refused before sending: the server would refuse it with the same ``fields``."""

    def __init__(self, fields: Mapping[str, list[str]]) -> None:
        super().__init__("Invalid input.", code="invalid", fields=fields)


class ConnectionFailed(ConflictMonitorError):
    """No answer: the connection failed or timed out on every attempt."""

    def __init__(self, message: str, *, attempts: int) -> None:
        super().__init__(message, code="connection_failed")
        self.attempts = attempts


class FeedClosed(ConflictMonitorError):
    """The live feed closed the connection in a way reconnecting would not mend (``close_code``)."""

    def __init__(self, message: str, *, close_code: int) -> None:
        super().__init__(message, code="feed_closed", close_code=close_code)


class APIError(ConflictMonitorError):
    """The server answered with an error status (or, from the live feed, closed with ``close_code``)."""

    status: int


class InvalidRequest(APIError):
    """400: a field, query parameter or header is wrong (``fields`` names it), or the body is not JSON."""


class AuthenticationFailed(APIError):
    """401: the token is missing, malformed, unknown or revoked (the feed: close code 4401, or 4403 for a read
    key it does not know)."""


class PermissionDenied(APIError):
    """403: the token may not do this (a read key cannot write; the feed closes 4403 on an ingest key)."""


class NotFound(APIError):
    """404: unknown path or run."""


class Conflict(APIError):
    """409: the request conflicts with the current state."""


class RunAlreadyFinished(Conflict):
    """409 ``run_already_finished``: the run is not running any more."""


class PayloadTooLarge(APIError):
    """413: the body is over the server's size limit, or the batch over its item limit."""


class IdempotencyKeyReused(APIError):
    """422: the Idempotency-Key was first used with a different request."""


class RateLimited(APIError):
    """429: over the rate limit; ``retry_after`` is the server's Retry-After in seconds, if it sent one."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx: the server (or a proxy in front of it) failed; 502/503/504 are retried before this is raised."""


class MetricsNotSent(ConflictMonitorError):
    """Buffered metrics could not be stored; ``metrics`` holds every one still unsent, in order.

    The cause (``__cause__``) is the error of the last attempt. The metrics stay buffered: a later flush
    sends them again with the same Idempotency-Keys, so a batch the server did store is not stored twice.
    """

    def __init__(self, cause: ConflictMonitorError, metrics: Sequence[Metric]) -> None:
        super().__init__(
            f"{len(metrics)} metric(s) not sent: {cause.message}",
            status=cause.status,
            code=cause.code,
            fields=cause.fields,
            request_id=cause.request_id,
        )
        self.metrics = list(metrics)


_BY_STATUS: dict[int, type[APIError]] = {
    400: InvalidRequest,
    401: AuthenticationFailed,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: IdempotencyKeyReused,
    429: RateLimited,
}


def error_from_answer(
    status: int, body: bytes, *, request_id: str | None = None, retry_after: float | None = None
) -> APIError:
    """The error for an answer with status ``status`` (>= 400) and body ``body``."""
    code, message, fields = _parse_body(status, body)
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else APIError)
    if code == "run_already_finished":
        cls = RunAlreadyFinished
    kwargs: dict[str, Any] = {"status": status, "code": code, "fields": fields, "request_id": request_id}
    if cls is RateLimited:
        return RateLimited(message, retry_after=retry_after, **kwargs)
    return cls(message, **kwargs)


def _parse_body(status: int, body: bytes) -> tuple[str, str, Mapping[str, Any] | None]:
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), str) and isinstance(parsed.get("detail"), str):
        fields = parsed.get("fields")
        return parsed["error"], parsed["detail"], fields if isinstance(fields, dict) else None
    text = body.decode("utf-8", errors="replace").strip()
    if len(text) > _TEXT_LIMIT:
        text = text[:_TEXT_LIMIT] + "..."
    return f"http_{status}", text or f"HTTP {status} without a body.", None


def describe_fields(fields: Mapping[str, Any], prefix: str = "") -> str:
    """``fields`` as one line: ``name: message; name: message`` (a bulk body's items by position)."""
    parts = []
    for name, value in fields.items():
        if isinstance(value, Mapping):
            parts.append(describe_fields(value, prefix=f"{prefix}item {name}: "))
        elif isinstance(value, list):
            parts.append(f"{prefix}{name}: {' '.join(str(message) for message in value)}")
        else:
            parts.append(f"{prefix}{name}: {value}")
    return "; ".join(parts)
