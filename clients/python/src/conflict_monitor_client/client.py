"""The synchronous client: ``Monitor`` and its run block, ``Run``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime
from types import TracebackType
from typing import TypeVar, cast

import httpx

from conflict_monitor_client.reports import Metric, Sent
from conflict_monitor_client.retry import RetryPolicy
from conflict_monitor_client.runs import FinalStatus, RunRecord, Stage
from conflict_monitor_client.transport import DEFAULT_BATCH_SIZE, ClientCore, RunHandle, answer_from, no_answer_from
from conflict_monitor_client.wire import Answer, ApiRequest, NoAnswer, Send, Steps

__all__ = ["Monitor", "Run"]

T = TypeVar("T")


class Monitor:
    """Reports a pipeline's runs and metrics to a Conflict Monitor server.

    ``url`` is the server's (``http://127.0.0.1:8000``); ``token`` an ingest token's key. Every request
    is retried on no answer, 429 and 502/503/504 as ``retry`` says (``RetryPolicy()`` by default), every
    write under an Idempotency-Key derived from its content. ``batch_size`` (1-5000) is the most metrics
    sent in one request. Not thread-safe: one ``Monitor`` per thread.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 10.0,
        batch_size: int = DEFAULT_BATCH_SIZE,
        retry: RetryPolicy | None = None,
        http_client: httpx.Client | None = None,
        rand: Callable[[], float] | None = None,
    ) -> None:
        self._core = ClientCore.make(url, token, timeout=timeout, batch_size=batch_size, retry=retry, rand=rand)
        self._own_client = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout)

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connections (not those of an ``http_client`` passed in)."""
        if self._own_client:
            self._http.close()

    def run(self, source: str, stage: Stage, *, started_at: datetime | None = None) -> Run:
        """A run block: ``with monitor.run("acled", "scrape") as run:`` starts the run on entry and
        finishes it on exit, as succeeded, or as failed with the message of the exception that ended it.
        ``stage`` is one of scrape, geocode, validate."""
        return Run(self, source, stage, started_at)

    def report(
        self,
        source: str,
        *,
        geocoding_attempts: int = 0,
        geocoding_successes: int = 0,
        validation_attempts: int = 0,
        validation_passes: int = 0,
        metric_type: str = "batch",
        timestamp: datetime | None = None,
        run_id: int | None = None,
        stage: Stage | None = None,
    ) -> None:
        """Store one metric now, outside any run block (inside one, ``run.report`` batches and links). A
        report of a run started with ``start_run`` names it with ``run_id`` (and may give its ``stage``)."""
        self._execute(
            self._core.report(
                source,
                geocoding_attempts=geocoding_attempts,
                geocoding_successes=geocoding_successes,
                validation_attempts=validation_attempts,
                validation_passes=validation_passes,
                metric_type=metric_type,
                timestamp=timestamp,
                run_id=run_id,
                stage=stage,
            )
        )

    def send_metrics(self, metrics: Iterable[Metric]) -> Sent:
        """Store ``metrics`` (from ``make_metric``) in batches of ``batch_size``. ``MetricsNotSent`` holds the
        first batch that could not be stored and every one after it."""
        return self._execute(self._core.send_metrics(metrics))

    def start_run(self, source: str, stage: Stage, *, started_at: datetime | None = None) -> RunRecord:
        """Start a run (what a run block does on entry); finish it with ``finish_run``."""
        return self._execute(self._core.start_run(source, stage, started_at))

    def finish_run(
        self,
        run_id: int,
        *,
        status: FinalStatus = "succeeded",
        error: str | None = None,
        items_in: int | None = None,
        items_out: int | None = None,
        finished_at: datetime | None = None,
    ) -> RunRecord:
        """Finish a running run as ``succeeded`` or ``failed`` (with ``error``)."""
        return self._execute(
            self._core.finish_run(
                run_id, status=status, error=error, items_in=items_in, items_out=items_out, finished_at=finished_at
            )
        )

    def get_run(self, run_id: int) -> RunRecord:
        return self._execute(self._core.get_run(run_id))

    def _execute(self, steps: Steps[T]) -> T:
        """Carry out ``steps``: send each request, sleep each wait, until they return or raise."""
        outcome: Answer | NoAnswer | None = None
        while True:
            try:
                step = steps.send(outcome)
            except StopIteration as done:
                # A generator's return value arrives as StopIteration's, which is untyped.
                return cast(T, done.value)
            if isinstance(step, Send):
                outcome = self._send(step.request)
            else:
                time.sleep(step.seconds)
                outcome = None

    def _send(self, request: ApiRequest) -> Answer | NoAnswer:
        try:
            response = self._http.request(
                request.method,
                self._core.url(request),
                content=request.content,
                headers=self._core.headers(request),
                timeout=self._core.timeout,
            )
        except httpx.TransportError as exc:
            return no_answer_from(exc)
        return answer_from(response)


class Run(RunHandle):
    """A run block (``Monitor.run``). ``report`` buffers; a full batch, ``flush`` and the block's end send."""

    def __init__(self, monitor: Monitor, source: str, stage: Stage, started_at: datetime | None) -> None:
        super().__init__(monitor._core, source, stage, started_at)
        self._monitor = monitor

    def __enter__(self) -> Run:
        if self._state is not None:
            raise RuntimeError("A run block can be entered once")
        self._started(self._monitor._execute(self._core.start_run(self._source, self._stage, self._started_at)))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        state = self._open_state()
        self._closed = True
        self._monitor._execute(self._core.end_run(state, exc))

    def report(
        self,
        *,
        geocoding_attempts: int = 0,
        geocoding_successes: int = 0,
        validation_attempts: int = 0,
        validation_passes: int = 0,
        metric_type: str = "batch",
        timestamp: datetime | None = None,
    ) -> None:
        """Record one metric of this run (its source, linked to it, of its stage); sent when a batch is full,
        on ``flush`` and at the block's end. ``InvalidReport`` at once for a report the server would refuse."""
        full = self._buffer(
            geocoding_attempts=geocoding_attempts,
            geocoding_successes=geocoding_successes,
            validation_attempts=validation_attempts,
            validation_passes=validation_passes,
            metric_type=metric_type,
            timestamp=timestamp,
        )
        if full:
            self.flush()

    def flush(self) -> Sent:
        """Send every buffered metric now (``MetricsNotSent`` if a batch cannot be stored)."""
        return self._monitor._execute(self._core.flush(self._open_state().buffer))
