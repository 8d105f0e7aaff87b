"""The requests the client makes and the retry loop around each, without any I/O.

``exchange`` is a generator: it yields ``Send`` (make this HTTP request, send back its ``Answer`` or
``NoAnswer``) and ``Sleep`` (wait this long), and returns the parsed ``ApiResponse`` or raises the error.
The synchronous client (``client.py``) and the asynchronous one (``aio.py``) each only carry out those
steps with httpx, so the request building, the retry decisions and the error mapping exist once.
Operations made of several requests (``runs.py``) compose with ``yield from``.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from conflict_monitor_client.errors import ConflictMonitorError, ConnectionFailed, error_from_answer
from conflict_monitor_client.retry import RETRYABLE_STATUSES, RetryPolicy, parse_retry_after

__all__ = [
    "API_PATH",
    "Answer",
    "ApiRequest",
    "ApiResponse",
    "NoAnswer",
    "Send",
    "Sleep",
    "Steps",
    "api_base_url",
    "canonical_json",
    "exchange",
    "request_headers",
]

API_PATH = "/api/v1/monitoring/"
# Versioned, so a change to how keys are derived can never collide with keys an older client stored.
_KEY_PREFIX = "cmc1-"

T = TypeVar("T")


def canonical_json(value: Any) -> bytes:
    """The one serialisation of a body: keys sorted, no spaces, so equal content gives equal bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


@dataclass(frozen=True)
class ApiRequest:
    """One API call: ``path`` is relative to the API's base path (``runs/12/finish``)."""

    method: str
    path: str
    body: Any = None
    content: bytes | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "content", None if self.body is None else canonical_json(self.body))

    @property
    def idempotency_key(self) -> str | None:
        """For a write, the SHA-256 of its method, path and canonical body.

        Derived from the content rather than drawn at random, so a retried request, and the same report
        made again (a re-run with the same timestamps), carry the same key, and the server stores it once
        (it keeps keys, per token, for ``MONITORING_IDEMPOTENCY_TTL_HOURS``, 24 h by default).
        """
        if self.method != "POST":
            return None
        digest = hashlib.sha256(f"{self.method} {self.path}\n".encode() + (self.content or b""))
        return _KEY_PREFIX + digest.hexdigest()


@dataclass(frozen=True)
class Send:
    request: ApiRequest


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Answer:
    """An HTTP answer; ``headers`` with lower-case names."""

    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class NoAnswer:
    """The request got no answer: ``reason`` says why (refused, reset, timed out)."""

    reason: str


@dataclass(frozen=True)
class ApiResponse:
    status: int
    data: Any
    replayed: bool
    request_id: str | None


Steps = Generator[Send | Sleep, Answer | NoAnswer | None, T]


def exchange(
    request: ApiRequest, policy: RetryPolicy, *, rand: Callable[[], float] = random.random
) -> Steps[ApiResponse]:
    """Send ``request`` until it is answered without a retryable error or ``policy`` gives up."""
    attempt = 0
    while True:
        attempt += 1
        outcome = yield Send(request)
        error: ConflictMonitorError
        retry_after = None
        if isinstance(outcome, NoAnswer):
            error = ConnectionFailed(f"{outcome.reason} (attempt {attempt})", attempts=attempt)
        elif outcome is None:
            raise RuntimeError("the driver sent no outcome for a Send step")
        elif outcome.status < 400:
            return _parse_success(outcome)
        else:
            retry_after = parse_retry_after(outcome.headers.get("retry-after"))
            error = error_from_answer(
                outcome.status, outcome.body, request_id=outcome.headers.get("x-request-id"), retry_after=retry_after
            )
            if outcome.status not in RETRYABLE_STATUSES:
                raise error
        wait = policy.delay(attempt, retry_after=retry_after, rand=rand)
        if wait is None:
            raise error
        yield Sleep(wait)


def _parse_success(answer: Answer) -> ApiResponse:
    request_id = answer.headers.get("x-request-id")
    try:
        data = json.loads(answer.body) if answer.body else None
    except ValueError:
        # A 2xx that is not JSON is not the monitor's API (a wrong URL answered by another site).
        raise ConflictMonitorError(
            "The answer is not JSON: is the URL a Conflict Monitor server?",
            status=answer.status,
            code="unexpected_answer",
            request_id=request_id,
        ) from None
    replayed = answer.headers.get("idempotent-replayed") == "true"
    return ApiResponse(status=answer.status, data=data, replayed=replayed, request_id=request_id)


def api_base_url(url: str) -> str:
    """The API's base URL for a server URL (``http://host:8000``, also with a path prefix or with the API
    path itself); always ends with ``/``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"Not an http(s) URL: {url!r}")
    path = parts.path.rstrip("/")
    if not (path + "/").endswith(API_PATH):
        path += API_PATH.rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, path + "/", "", ""))


def request_headers(request: ApiRequest, *, token: str, user_agent: str) -> dict[str, str]:
    headers = {"Authorization": f"Token {token}", "Accept": "application/json", "User-Agent": user_agent}
    if request.content is not None:
        headers["Content-Type"] = "application/json"
    key = request.idempotency_key
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers
