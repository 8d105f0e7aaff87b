"""The asynchronous client: ``AsyncMonitor`` and its run block, ``AsyncRun``.

The same operations as ``client.Monitor`` (the same ``ClientCore`` steps), carried out with
``httpx.AsyncClient`` and ``asyncio.sleep``; and ``follow()``, the live feed (``follow.py``), which only
an asyncio program can iterate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import datetime
from types import TracebackType
from typing import Literal, TypeVar, cast, overload

import httpx

from conflict_monitor_client.feed import FeedPosition, StatusStale, StatusUpdate
from conflict_monitor_client.follow import DEFAULT_RECONNECT, Feed
from conflict_monitor_client.reports import Metric, Sent
from conflict_monitor_client.retry import RetryPolicy
from conflict_monitor_client.runs import FinalStatus, RunRecord, Stage
from conflict_monitor_client.transport import (
    DEFAULT_BATCH_SIZE,
    VERSION,
    ClientCore,
    RunHandle,
    answer_from,
    no_answer_from,
)
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
        run_id: int | None = None,
        stage: Stage | None = None,
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
                run_id=run_id,
                stage=stage,
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

    @overload
    def follow(
        self,
        *,
        since: FeedPosition | None = ...,
        stale_notices: Literal[False] = ...,
        reconnect: RetryPolicy | None = ...,
        give_up_after: int | None = ...,
        idle_timeout: float = ...,
    ) -> Feed[StatusUpdate]: ...

    @overload
    def follow(
        self,
        *,
        since: FeedPosition | None = ...,
        stale_notices: Literal[True],
        reconnect: RetryPolicy | None = ...,
        give_up_after: int | None = ...,
        idle_timeout: float = ...,
    ) -> Feed[StatusUpdate | StatusStale]: ...

    def follow(
        self,
        *,
        since: FeedPosition | None = None,
        stale_notices: bool = False,
        reconnect: RetryPolicy | None = None,
        give_up_after: int | None = None,
        idle_timeout: float = 60.0,
    ) -> Feed[StatusUpdate] | Feed[StatusUpdate | StatusStale]:
        """The status documents of the live feed, in order, across reconnects: ``async for update in
        monitor.follow():`` (the monitor's token must be a read key, ``cmr_…``).

        Each ``StatusUpdate`` carries the document (``status``), its ``seq`` and ``epoch``; none is yielded
        twice and none is skipped while the server's history covers a disconnection (else the next one is
        ``resynced``). ``stale_notices=True`` also yields ``StatusStale`` when the server says the status is
        not being updated. ``since``: continue after a stored ``feed.position``. Reconnects wait
        ``reconnect.backoff(n)`` (1 s doubling to 30 s, with jitter); ``give_up_after`` failed connects in a
        row raise ``ConnectionFailed`` (None: keep trying). ``idle_timeout``: seconds without a frame after
        which the socket counts as dead (the server sends one every broadcast interval, 5 s).
        """
        return Feed(
            api_base=self._core.base_url,
            token=self._core.token,
            user_agent=f"conflict-monitor-client/{VERSION}",
            since=since,
            stale_notices=stale_notices,
            reconnect=reconnect or DEFAULT_RECONNECT,
            give_up_after=give_up_after,
            idle_timeout=idle_timeout,
            open_timeout=self._core.timeout,
            rand=self._core.rand,
        )

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
