"""Metric reports: checked when made, buffered, and sent in batches.

The checks are the server's (docs/api.md, ``POST metrics``), so a wrong report fails where it is made,
with the server's field names, rather than later in a flush that also holds good reports.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple, get_args

from conflict_monitor_client.errors import InvalidReport
from conflict_monitor_client.wire import ApiRequest

__all__ = [
    "MAX_BATCH",
    "STAGES",
    "Metric",
    "MetricBuffer",
    "Sent",
    "Stage",
    "make_metric",
    "metrics_request",
    "utc_timestamp",
]

SOURCE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")
METRIC_TYPE_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,49}")
MAX_COUNT = 2**31 - 1
# The server's largest run id (a 64-bit key).
MAX_RUN_ID = 2**63 - 1
Stage = Literal["scrape", "geocode", "validate"]
STAGES: tuple[Stage, ...] = get_args(Stage)
# The server's MONITORING_INGEST_MAX_BATCH default: more metrics in one request is a 413.
MAX_BATCH = 5000
COUNT_FIELDS = ("geocoding_attempts", "geocoding_successes", "validation_attempts", "validation_passes")
_PART_OF = (("geocoding_successes", "geocoding_attempts"), ("validation_passes", "validation_attempts"))


def utc_timestamp(when: datetime | None = None) -> str:
    """ISO-8601 in UTC with microseconds: the report's own time, part of its content and so of its key."""
    when = when or datetime.now(UTC)
    if when.tzinfo is None or when.utcoffset() is None:
        raise InvalidReport({"timestamp": ["Must be a timezone-aware date-time."]})
    return when.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True, kw_only=True)
class Metric:
    """One data-quality report, as the server stores it."""

    source: str
    timestamp: str
    metric_type: str = "batch"
    geocoding_attempts: int = 0
    geocoding_successes: int = 0
    validation_attempts: int = 0
    validation_passes: int = 0
    # The run that reported it (``POST runs``) and its stage; None: not linked / unstaged.
    run_id: int | None = None
    stage: Stage | None = None

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "source": self.source,
            "metric_type": self.metric_type,
            "timestamp": self.timestamp,
            **{name: getattr(self, name) for name in COUNT_FIELDS},
        }
        # Only when set: an unlinked report keeps the body, and so the idempotency key, it always had.
        if self.run_id is not None:
            body["run_id"] = self.run_id
        if self.stage is not None:
            body["stage"] = self.stage
        return body


def make_metric(
    *,
    source: str,
    geocoding_attempts: int = 0,
    geocoding_successes: int = 0,
    validation_attempts: int = 0,
    validation_passes: int = 0,
    metric_type: str = "batch",
    timestamp: datetime | None = None,
    run_id: int | None = None,
    stage: Stage | None = None,
) -> Metric:
    """A checked ``Metric``; ``InvalidReport`` names every wrong field. Without ``timestamp``, now.

    The timestamp is fixed here, when the report is made: two reports with the same counts at different
    times are two reports (different keys), and a retry of one is the same report (the same key).
    ``run_id`` links the report to a run of the same source (the server checks that it exists); ``stage``
    is the stage that reported it (with ``run_id``, the server takes the run's when it is None).
    """
    counts = {
        "geocoding_attempts": geocoding_attempts,
        "geocoding_successes": geocoding_successes,
        "validation_attempts": validation_attempts,
        "validation_passes": validation_passes,
    }
    errors: dict[str, list[str]] = {}
    if not isinstance(source, str) or not SOURCE_PATTERN.fullmatch(source):
        errors["source"] = ["1-100 characters: letters, digits, '_', '.', ':', '-' (starting with a letter or digit)."]
    if not isinstance(metric_type, str) or not METRIC_TYPE_PATTERN.fullmatch(metric_type):
        errors["metric_type"] = ["1-50 characters: lower-case letters, digits and '_', starting with a letter."]
    for name, value in counts.items():
        # bool is an int, and the server refuses it.
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
            errors[name] = [f"Must be an integer between 0 and {MAX_COUNT}."]
    for part, whole in _PART_OF:
        if part not in errors and whole not in errors and counts[part] > counts[whole]:
            errors[part] = [f"Cannot exceed {whole}."]
    # bool is an int here too.
    if run_id is not None and (
        isinstance(run_id, bool) or not isinstance(run_id, int) or not 1 <= run_id <= MAX_RUN_ID
    ):
        errors["run_id"] = [f"Must be a run's id: an integer between 1 and {MAX_RUN_ID}."]
    if stage is not None and stage not in STAGES:
        errors["stage"] = [f"One of {', '.join(STAGES)}."]
    try:
        stamp = utc_timestamp(timestamp)
    except InvalidReport as exc:
        errors.update(exc.fields)
    if errors:
        raise InvalidReport(errors)
    return Metric(source=source, metric_type=metric_type, timestamp=stamp, run_id=run_id, stage=stage, **counts)


class Sent(NamedTuple):
    """What a flush sent: ``metrics`` the server has stored, of which ``replayed`` it had stored before.

    A replayed batch was answered from the server's idempotency record and stored nothing this time: an
    identical batch (same content, so same key) was stored earlier, by an attempt whose answer was lost
    or by an earlier run of the same report.
    """

    metrics: int
    replayed: int


def metrics_request(metrics: Sequence[Metric]) -> ApiRequest:
    """One ``POST metrics`` with a list body: stored all or nothing, under one Idempotency-Key."""
    return ApiRequest("POST", "metrics", [metric.as_json() for metric in metrics])


class MetricBuffer:
    """Reports waiting to be sent, in batches of at most ``batch_size``.

    A batch, once attempted, keeps its composition until it is stored: were a failed batch merged with
    later reports, its retry would have a different body and so a different Idempotency-Key, and a batch
    the server had stored (only its answer lost) would be stored twice. So ``seal`` cuts the open reports
    into batches once, and later reports start new ones.
    """

    def __init__(self, batch_size: int) -> None:
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be 1-{MAX_BATCH}")
        self.batch_size = batch_size
        self._sealed: deque[tuple[Metric, ...]] = deque()
        self._open: list[Metric] = []

    def add(self, metric: Metric) -> bool:
        """Buffer ``metric``; True when a full batch is waiting (time to flush)."""
        self._open.append(metric)
        return len(self._open) >= self.batch_size

    def seal(self) -> None:
        while self._open:
            self._sealed.append(tuple(self._open[: self.batch_size]))
            del self._open[: self.batch_size]

    def next_batch(self) -> tuple[Metric, ...] | None:
        """The oldest sealed batch, or None."""
        return self._sealed[0] if self._sealed else None

    def sent(self, batch: tuple[Metric, ...]) -> None:
        """``batch`` (the one ``next_batch`` gave) is stored."""
        if not self._sealed or self._sealed[0] is not batch:
            raise RuntimeError("sent() must be given the batch next_batch() returned")
        self._sealed.popleft()

    @property
    def pending(self) -> list[Metric]:
        """Every metric not yet stored, oldest first."""
        return [metric for batch in self._sealed for metric in batch] + self._open

    def __len__(self) -> int:
        return sum(len(batch) for batch in self._sealed) + len(self._open)
