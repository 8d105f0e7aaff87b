"""``AsyncMonitor``: the run block and retries as with ``Monitor``, through the same core (the same requests,
byte for byte, and the same keys)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from channels.db import database_sync_to_async
from conflict_monitor_client import AsyncMonitor, Monitor, RetryPolicy, make_metric

from tests.clients.python.helpers import Wire, on_server, stored_metrics
from tests.clients.python.stub_server import HangUp, Reply, stub_server

pytestmark = [pytest.mark.asyncio]
FAST = RetryPolicy(max_attempts=4, initial_delay=0.05, max_delay=0.2)


@database_sync_to_async
def _run_status(run_id: int) -> tuple[str, str, int]:
    from monitoring.models import PipelineRun

    run = PipelineRun.objects.get(pk=run_id)
    return run.status, run.error, run.items_out


@on_server
async def test_an_async_run_block_stores_its_reports_in_batches_and_finishes_the_run(server_url, server_key):
    wire = Wire()
    async with (
        wire.async_client() as http,
        AsyncMonitor(server_url, server_key, batch_size=2, http_client=http) as monitor,
        monitor.run("gdelt", "validate") as run,
    ):
        for n in range(5):
            await run.report(validation_attempts=10, validation_passes=n)
        run.items_out = 5
    assert await database_sync_to_async(stored_metrics)() == [("gdelt", "batch", 0, 0, 10, n) for n in range(5)]
    assert [path for _, path in wire.requests].count("metrics") == 3
    assert await _run_status(run.id) == ("succeeded", "", 5)


@on_server
async def test_an_exception_in_an_async_block_fails_the_run_with_its_message(server_url, server_key):
    async with AsyncMonitor(server_url, server_key) as monitor:
        with pytest.raises(TimeoutError):
            async with monitor.run("gdelt", "geocode") as run:
                await run.report(geocoding_attempts=3, geocoding_successes=3)
                raise TimeoutError("geocoder did not answer in 30 s")
    assert await _run_status(run.id) == ("failed", "TimeoutError: geocoder did not answer in 30 s", 0)
    assert await database_sync_to_async(stored_metrics)() == [("gdelt", "batch", 3, 3, 0, 0)]


@on_server
async def test_a_cancelled_task_still_finishes_its_run_as_failed(server_url, server_key):
    started = asyncio.Event()

    async def pipeline(monitor: AsyncMonitor) -> int:
        async with monitor.run("gdelt", "scrape") as run:
            started.set()
            await asyncio.sleep(60)
        return run.id

    async with AsyncMonitor(server_url, server_key) as monitor:
        task = asyncio.create_task(pipeline(monitor))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    from monitoring.models import PipelineRun

    statuses = await database_sync_to_async(lambda: list(PipelineRun.objects.values_list("status", "error")))()
    assert statuses == [("failed", "CancelledError")]


async def test_async_retries_follow_the_same_policy():
    unavailable = Reply(503, {"error": "database_unavailable", "detail": "Retry shortly."}, {"Retry-After": "0"})
    with stub_server([unavailable, HangUp(), Reply(201, {"created": 1, "ids": [1]})]) as stub:
        async with AsyncMonitor(stub.url, "cm_test", retry=FAST) as monitor:
            await monitor.report("acled", geocoding_attempts=1)
    assert len(stub.received) == 3
    assert len({request.headers["Idempotency-Key"] for request in stub.received}) == 1


async def test_the_sync_and_async_clients_send_the_same_requests():
    at = datetime(2026, 12, 7, 12, tzinfo=UTC)
    metrics = [make_metric(source="acled", geocoding_attempts=n, timestamp=at) for n in range(3)]
    with stub_server([], then=Reply(201, {"created": 2, "ids": [1, 2]})) as stub:
        with Monitor(stub.url, "cm_test", batch_size=2) as monitor:
            await asyncio.to_thread(monitor.send_metrics, metrics)
        async with AsyncMonitor(stub.url, "cm_test", batch_size=2) as monitor:
            await monitor.send_metrics(metrics)
    sync, async_ = stub.received[:2], stub.received[2:]
    assert len(async_) == 2
    for one, other in zip(sync, async_, strict=True):
        assert (one.path, one.body, one.headers["Idempotency-Key"]) == (
            other.path,
            other.body,
            other.headers["Idempotency-Key"],
        )
