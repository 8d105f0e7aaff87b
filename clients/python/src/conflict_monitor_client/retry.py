"""When to try a request again, and how long to wait first.

Retried: no answer (connection refused or reset, timeout), 429 and 502/503/504. Nothing else: any other
4xx is the request's own fault and would fail again, and a 500 is a bug on the server that a retry would
only repeat. Retrying a write is safe because every write carries an Idempotency-Key derived from its
content (``wire.idempotency_key``): a retry of a request the server already stored is answered from its
idempotency record and stores nothing.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

__all__ = ["RETRYABLE_STATUSES", "RetryPolicy", "parse_retry_after"]

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff with jitter, capped; the server's Retry-After is honoured.

    The n-th retry (n = 1, 2, ...) waits between half and all of ``min(max_delay, initial_delay *
    multiplier ** (n - 1))``: the random half keeps many clients that failed together from retrying
    together, the fixed half keeps a retry from coming at once. When the answer has a Retry-After, the
    wait is that (plus up to 10 % jitter) instead; one longer than ``max_retry_after`` is not waited for,
    and the error is raised.
    """

    max_attempts: int = 5
    initial_delay: float = 0.5
    multiplier: float = 2.0
    max_delay: float = 30.0
    max_retry_after: float = 120.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.initial_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0 or self.multiplier < 1:
            raise ValueError("delays must be >= 0 and multiplier >= 1")

    def backoff(self, retry: int, *, rand: Callable[[], float] = random.random) -> float:
        """The wait before retry number ``retry`` (1 for the first retry) when the server named none."""
        # The exponent is bounded so a long retry count cannot overflow the float.
        ceiling = min(self.max_delay, self.initial_delay * self.multiplier ** min(retry - 1, 64))
        return ceiling / 2 + rand() * ceiling / 2

    def delay(
        self, retry: int, *, retry_after: float | None, rand: Callable[[], float] = random.random
    ) -> float | None:
        """The wait before retry number ``retry``, or None when there is none to make."""
        if retry >= self.max_attempts:
            return None
        if retry_after is None:
            return self.backoff(retry, rand=rand)
        if retry_after > self.max_retry_after:
            return None
        return retry_after * (1 + 0.1 * rand())


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Retry-After in seconds: delay-seconds or an HTTP date (RFC 9110); None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None
