"""The asynchronous client: ``AsyncMonitor`` and its run block, ``AsyncRun``.

The same operations as ``client.Monitor`` (the same ``ClientCore`` steps), carried out with
``httpx.AsyncClient`` and ``asyncio.sleep``.
"""

from __future__ import annotations

import asyncio
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

__all__ = ["AsyncMonitor", "AsyncRun"]

T = TypeVar("T")


class AsyncMonitor:
    """``Monitor`` for asyncio: the same arguments and methods, awaited. One per event loop."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 10.0,
        batch_size: int = DEFAULT_BATCH_SIZE,
        retry: RetryPolicy | None = None,
        http_client: httpx.AsyncClient | None = None,
        rand: Callable[[], float] | None = None,
    ) -> None:
        self._core = ClientCore.make(url, token, timeout=timeout, batch_size=batch_size, retry=retry, rand=rand)
        self._own_client = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=timeout)

    async def __aenter__(self) -> AsyncMonitor:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connections (not those of an ``http_client`` passed in)."""
        if self._own_client:
            await self._http.aclose()

    def run(self, source: str, stage: Stage, *, started_at: datetime | None = None) -> AsyncRun:
        """``async with monitor.run("acled", "scrape") as run:`` (see ``Monitor.run``)."""
        return AsyncRun(self, source, stage, started_at)

    async def report(
        self,
        source: str,
        *,
        geocoding_attempts: int = 0,
        geocoding_successes: int = 0,
        validation_attempts: int = 0,
        validation_passes: int = 0,
        metric_type: str = "batch",
        timestamp: datetime | None = None,
    ) -> None:
        await self._execute(
            self._core.report(
                source,
                geocoding_attempts=geocoding_attempts,
                geocoding_successes=geocoding_successes,
                validation_attempts=validation_attempts,
                validation_passes=validation_passes,
                metric_type=metric_type,
                timestamp=timestamp,
            )
        )

    async def send_metrics(self, metrics: Iterable[Metric]) -> Sent:
        return await self._execute(self._core.send_metrics(metrics))

    async def start_run(self, source: str, stage: Stage, *, started_at: datetime | None = None) -> RunRecord:
        return await self._execute(self._core.start_run(source, stage, started_at))

    async def finish_run(
        self,
        run_id: int,
        *,
        status: FinalStatus = "succeeded",
        error: str | None = None,
        items_in: int | None = None,
        items_out: int | None = None,
        finished_at: datetime | None = None,
    ) -> RunRecord:
        return await self._execute(
            self._core.finish_run(
                run_id, status=status, error=error, items_in=items_in, items_out=items_out, finished_at=finished_at
            )
        )

    async def get_run(self, run_id: int) -> RunRecord:
        return await self._execute(self._core.get_run(run_id))

    async def _execute(self, steps: Steps[T]) -> T:
        outcome: Answer | NoAnswer | None = None
        while True:
            try:
                step = steps.send(outcome)
            except StopIteration as done:
                # A generator's return value arrives as StopIteration's, which is untyped.
                return cast(T, done.value)
            if isinstance(step, Send):
                outcome = await self._send(step.request)
            else:
                await asyncio.sleep(step.seconds)
                outcome = None

    async def _send(self, request: ApiRequest) -> Answer | NoAnswer:
        try:
            response = await self._http.request(
                request.method,
                self._core.url(request),
                content=request.content,
                headers=self._core.headers(request),
                timeout=self._core.timeout,
            )
        except httpx.TransportError as exc:
            return no_answer_from(exc)
        return answer_from(response)


class AsyncRun(RunHandle):
    """``Run`` for asyncio: ``await run.report(...)``, ``await run.flush()``."""

    def __init__(self, monitor: AsyncMonitor, source: str, stage: Stage, started_at: datetime | None) -> None:
        super().__init__(monitor._core, source, stage, started_at)
        self._monitor = monitor

    async def __aenter__(self) -> AsyncRun:
        if self._state is not None:
            raise RuntimeError("A run block can be entered once")
        record = await self._monitor._execute(self._core.start_run(self._source, self._stage, self._started_at))
        self._started(record)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        state = self._open_state()
        self._closed = True
        await self._monitor._execute(self._core.end_run(state, exc))

    async def report(
        self,
        *,
        geocoding_attempts: int = 0,
        geocoding_successes: int = 0,
        validation_attempts: int = 0,
        validation_passes: int = 0,
        metric_type: str = "batch",
        timestamp: datetime | None = None,
    ) -> None:
        full = self._buffer(
            geocoding_attempts=geocoding_attempts,
            geocoding_successes=geocoding_successes,
            validation_attempts=validation_attempts,
            validation_passes=validation_passes,
            metric_type=metric_type,
            timestamp=timestamp,
        )
        if full:
            await self.flush()

    async def flush(self) -> Sent:
        return await self._monitor._execute(self._core.flush(self._open_state().buffer))
