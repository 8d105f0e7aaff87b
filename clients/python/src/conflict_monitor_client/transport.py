"""What ``Monitor`` and ``AsyncMonitor`` share: their settings and every operation as ``wire`` steps
(``ClientCore``), the translation of an httpx answer or failure into a ``wire`` outcome, and the run
handle's bookkeeping. The two clients only carry the steps out, each with its own I/O."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from typing import Any

import httpx

from conflict_monitor_client.reports import MAX_BATCH, Metric, MetricBuffer, Sent, make_metric
from conflict_monitor_client.retry import RetryPolicy
from conflict_monitor_client.runs import (
    RunRecord,
    RunState,
    Stage,
    exit_steps,
    finish_steps,
    flush_steps,
    start_steps,
)
from conflict_monitor_client.wire import Answer, ApiRequest, NoAnswer, Steps, api_base_url, exchange, request_headers

__all__ = ["ClientCore", "RunHandle", "answer_from", "no_answer_from"]

try:
    VERSION = metadata.version("conflict-monitor-client")
except metadata.PackageNotFoundError:  # imported from a source tree that was never installed
    VERSION = "0+unknown"
DEFAULT_BATCH_SIZE = 500


@dataclass(frozen=True)
class ClientCore:
    base_url: str
    token: str = field(repr=False)
    timeout: float
    batch_size: int
    policy: RetryPolicy
    # The jitter's source; tests pass a fixed one.
    rand: Callable[[], float] = random.random

    @classmethod
    def make(
        cls,
        url: str,
        token: str,
        *,
        timeout: float,
        batch_size: int,
        retry: RetryPolicy | None,
        rand: Callable[[], float] | None,
    ) -> ClientCore:
        if not token or not isinstance(token, str):
            raise ValueError(
                "token: a token's key (manage.py create_ingest_token <name> to report, create_read_token to follow)"
            )
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be 1-{MAX_BATCH} (the server's batch limit)")
        return cls(
            base_url=api_base_url(url),
            token=token,
            timeout=timeout,
            batch_size=batch_size,
            policy=retry or RetryPolicy(),
            rand=rand or random.random,
        )

    def url(self, request: ApiRequest) -> str:
        return self.base_url + request.path

    def headers(self, request: ApiRequest) -> dict[str, str]:
        return request_headers(
            request, token=self.token, user_agent=f"conflict-monitor-client/{VERSION} httpx/{httpx.__version__}"
        )

    def report(self, source: str, **fields: Any) -> Steps[Sent]:
        """One metric, checked now (``InvalidReport`` before any step), then sent."""
        return self.send_metrics([make_metric(source=source, **fields)])

    def send_metrics(self, metrics: Iterable[Metric]) -> Steps[Sent]:
        buffer = MetricBuffer(self.batch_size)
        for metric in metrics:
            buffer.add(metric)
        return self.flush(buffer)

    def flush(self, buffer: MetricBuffer) -> Steps[Sent]:
        return flush_steps(buffer, self.policy, rand=self.rand)

    def start_run(self, source: str, stage: Stage, started_at: datetime | None) -> Steps[RunRecord]:
        return start_steps(self.policy, source=source, stage=stage, started_at=started_at, rand=self.rand)

    def finish_run(self, run_id: int, **fields: Any) -> Steps[RunRecord]:
        return finish_steps(self.policy, run_id, rand=self.rand, **fields)

    def end_run(self, state: RunState, exc: BaseException | None) -> Steps[None]:
        return exit_steps(state, self.policy, exc, rand=self.rand)

    def get_run(self, run_id: int) -> Steps[RunRecord]:
        response = yield from exchange(ApiRequest("GET", f"runs/{int(run_id)}"), self.policy, rand=self.rand)
        return RunRecord.from_json(response.data)


def answer_from(response: httpx.Response) -> Answer:
    return Answer(
        status=response.status_code,
        headers={name.lower(): value for name, value in response.headers.items()},
        body=response.content,
    )


def no_answer_from(exc: httpx.TransportError) -> NoAnswer:
    return NoAnswer(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)


class RunHandle:
    """The part of a run block that does no I/O: what it is, what it holds, and making its reports."""

    def __init__(self, core: ClientCore, source: str, stage: Stage, started_at: datetime | None) -> None:
        self._core = core
        self._source = source
        self._stage = stage
        self._started_at = started_at
        self._state: RunState | None = None
        self._closed = False

    @property
    def source(self) -> str:
        return self._source

    @property
    def stage(self) -> Stage:
        return self._stage

    @property
    def record(self) -> RunRecord:
        """The run as the server last returned it (after the block: finished)."""
        return self._open_state(allow_closed=True).record

    @property
    def id(self) -> int:
        return self.record.id

    @property
    def items_in(self) -> int | None:
        return self._open_state(allow_closed=True).items_in

    @items_in.setter
    def items_in(self, value: int | None) -> None:
        self._open_state().items_in = value

    @property
    def items_out(self) -> int | None:
        return self._open_state(allow_closed=True).items_out

    @items_out.setter
    def items_out(self, value: int | None) -> None:
        self._open_state().items_out = value

    @property
    def pending(self) -> int:
        """Metrics reported and not yet stored."""
        return len(self._open_state(allow_closed=True).buffer)

    def _started(self, record: RunRecord) -> None:
        self._state = RunState(record, batch_size=self._core.batch_size)

    def _open_state(self, *, allow_closed: bool = False) -> RunState:
        if self._state is None:
            raise RuntimeError("The run has not started: use it as `with monitor.run(source, stage) as run:`")
        if self._closed and not allow_closed:
            raise RuntimeError(f"Run {self._state.record.id} is finished: report within its block")
        return self._state

    def _buffer(
        self,
        *,
        geocoding_attempts: int,
        geocoding_successes: int,
        validation_attempts: int,
        validation_passes: int,
        metric_type: str,
        timestamp: datetime | None,
    ) -> bool:
        """Check and buffer one report of the run (its source, id and stage); True when a full batch waits."""
        state = self._open_state()
        metric = make_metric(
            source=self._source,
            run_id=state.record.id,
            stage=self._stage,
            geocoding_attempts=geocoding_attempts,
            geocoding_successes=geocoding_successes,
            validation_attempts=validation_attempts,
            validation_passes=validation_passes,
            metric_type=metric_type,
            timestamp=timestamp,
        )
        return state.buffer.add(metric)
