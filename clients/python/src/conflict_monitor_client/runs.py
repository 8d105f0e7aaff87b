"""A pipeline run's life: started, reported on, finished as succeeded or failed. No I/O: each operation is
a generator of ``wire`` steps that ``Monitor`` and ``AsyncMonitor`` carry out.

A run's metrics are stored under the run's source, linked to the run (its id) and of its stage: the
server's status and trends break them down by stage.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from conflict_monitor_client.errors import ConflictMonitorError, InvalidReport, MetricsNotSent
from conflict_monitor_client.reports import (
    MAX_COUNT,
    SOURCE_PATTERN,
    STAGES,
    MetricBuffer,
    Sent,
    Stage,
    metrics_request,
    utc_timestamp,
)
from conflict_monitor_client.retry import RetryPolicy
from conflict_monitor_client.wire import ApiRequest, Steps, exchange

__all__ = [
    "STAGES",
    "FinalStatus",
    "Stage",
    "RunRecord",
    "RunState",
    "exit_steps",
    "failure_message",
    "finish_steps",
    "flush_steps",
    "start_steps",
]

FinalStatus = Literal["succeeded", "failed"]
# The server's limit on a run's error text (MAX_ERROR_CHARS).
MAX_ERROR_CHARS = 10_000


@dataclass(frozen=True)
class RunRecord:
    """A run as the server returns it."""

    id: int
    source: str
    stage: str
    status: str
    started_at: str
    finished_at: str | None
    items_in: int
    items_out: int
    error: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunRecord:
        return cls(
            id=int(data["id"]),
            source=str(data["source"]),
            stage=str(data["stage"]),
            status=str(data["status"]),
            started_at=str(data["started_at"]),
            finished_at=None if data.get("finished_at") is None else str(data["finished_at"]),
            items_in=int(data.get("items_in") or 0),
            items_out=int(data.get("items_out") or 0),
            error=str(data.get("error") or ""),
        )


class RunState:
    """What a run block holds: the run's record, its buffered metrics, and the item counts to finish with."""

    def __init__(self, record: RunRecord, *, batch_size: int) -> None:
        self.record = record
        self.buffer = MetricBuffer(batch_size)
        self.items_in: int | None = None
        self.items_out: int | None = None


def _check_counts(**counts: int | None) -> dict[str, list[str]]:
    return {
        name: [f"Must be an integer between 0 and {MAX_COUNT}."]
        for name, value in counts.items()
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT)
    }


def start_request(*, source: str, stage: Stage, started_at: datetime | None = None) -> ApiRequest:
    errors: dict[str, list[str]] = {}
    if not isinstance(source, str) or not SOURCE_PATTERN.fullmatch(source):
        errors["source"] = ["1-100 characters: letters, digits, '_', '.', ':', '-' (starting with a letter or digit)."]
    if stage not in STAGES:
        errors["stage"] = [f"One of {', '.join(STAGES)}."]
    if errors:
        raise InvalidReport(errors)
    return ApiRequest("POST", "runs", {"source": source, "stage": stage, "started_at": utc_timestamp(started_at)})


def finish_request(
    run_id: int,
    *,
    status: FinalStatus,
    error: str | None = None,
    items_in: int | None = None,
    items_out: int | None = None,
    finished_at: datetime | None = None,
) -> ApiRequest:
    errors = _check_counts(items_in=items_in, items_out=items_out)
    if status not in ("succeeded", "failed"):
        errors["status"] = ["One of succeeded, failed."]
    if errors:
        raise InvalidReport(errors)
    body: dict[str, Any] = {"status": status, "finished_at": utc_timestamp(finished_at)}
    if error:
        body["error"] = error[:MAX_ERROR_CHARS]
    if items_in is not None:
        body["items_in"] = items_in
    if items_out is not None:
        body["items_out"] = items_out
    return ApiRequest("POST", f"runs/{int(run_id)}/finish", body)


def start_steps(
    policy: RetryPolicy,
    *,
    source: str,
    stage: Stage,
    started_at: datetime | None = None,
    rand: Callable[[], float] = random.random,
) -> Steps[RunRecord]:
    request = start_request(source=source, stage=stage, started_at=started_at)
    response = yield from exchange(request, policy, rand=rand)
    return RunRecord.from_json(response.data)


def finish_steps(
    policy: RetryPolicy, run_id: int, *, rand: Callable[[], float] = random.random, **fields: Any
) -> Steps[RunRecord]:
    response = yield from exchange(finish_request(run_id, **fields), policy, rand=rand)
    return RunRecord.from_json(response.data)


def flush_steps(buffer: MetricBuffer, policy: RetryPolicy, *, rand: Callable[[], float] = random.random) -> Steps[Sent]:
    """Send every buffered metric, oldest batch first. Stops at the first batch that cannot be stored
    (``MetricsNotSent``), leaving it and the later ones buffered."""
    buffer.seal()
    metrics = replayed = 0
    while (batch := buffer.next_batch()) is not None:
        try:
            response = yield from exchange(metrics_request(batch), policy, rand=rand)
        except ConflictMonitorError as exc:
            raise MetricsNotSent(exc, buffer.pending) from exc
        buffer.sent(batch)
        metrics += len(batch)
        replayed += len(batch) if response.replayed else 0
    return Sent(metrics=metrics, replayed=replayed)


def failure_message(exc: BaseException) -> str:
    """The run's ``error`` for the exception that ended its block: type and message."""
    text = str(exc)
    message = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return message[:MAX_ERROR_CHARS]


def exit_steps(
    state: RunState, policy: RetryPolicy, exc: BaseException | None, *, rand: Callable[[], float] = random.random
) -> Steps[None]:
    """End a run block: flush its metrics, then finish the run (failed with ``exc``'s message, if any).

    Both are attempted whatever the other's outcome. With ``exc``, the block's own exception goes on and
    the reporting errors are added to it as notes (never hiding the exception that ended the block);
    without, an unsent metric raises ``MetricsNotSent``, then a failed finish raises its error.
    """
    flush_error: ConflictMonitorError | None = None
    try:
        yield from flush_steps(state.buffer, policy, rand=rand)
    except ConflictMonitorError as error:
        flush_error = error
    finish_error: ConflictMonitorError | None = None
    try:
        state.record = yield from finish_steps(
            policy,
            state.record.id,
            rand=rand,
            status="failed" if exc is not None else "succeeded",
            error=failure_message(exc) if exc is not None else None,
            items_in=state.items_in,
            items_out=state.items_out,
        )
    except ConflictMonitorError as error:
        finish_error = error
    if exc is not None:
        for problem in (flush_error, finish_error):
            if problem is not None:
                exc.add_note(f"conflict-monitor run {state.record.id}: {problem}")
        return
    if flush_error is not None:
        if finish_error is not None:
            flush_error.add_note(f"finishing run {state.record.id} failed too: {finish_error}")
        raise flush_error
    if finish_error is not None:
        raise finish_error
