"""The broadcaster: one status computation per tick, coalesced early pushes, one active instance."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction

from monitoring.broadcaster import AlwaysLeader, Broadcaster
from monitoring.feed.registry import get_store
from monitoring.services.feed import BROADCASTER_CHANNEL, mark_in_process_broadcaster, request_status_push_on_commit
from monitoring.services.metrics import MetricInput, record_metrics
from monitoring.tests.factories import PipelineRunFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("feed_backend")]


async def _run(broadcaster: Broadcaster) -> tuple[asyncio.Event, asyncio.Task]:
    stop = asyncio.Event()
    return stop, asyncio.ensure_future(broadcaster.run(stop))


async def _until(predicate, timeout: float) -> float:
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not predicate():
        assert loop.time() - start < timeout, "condition not reached in time"
        await asyncio.sleep(0.01)
    return loop.time() - start


@pytest.mark.asyncio
async def test_a_tick_publishes_status_alerts_and_sources_then_only_what_changed():
    await database_sync_to_async(PipelineRunFactory)(source="acled")
    broadcaster = Broadcaster(lease=AlwaysLeader(), interval=60, max_push_rate=2)
    store = get_store()
    await broadcaster.publish_once()
    assert [(await store.latest(topic=t)).seq for t in ("status", "alerts", "source:acled")] == [1, 1, 1]
    await broadcaster.publish_once()
    assert [(await store.latest(topic=t)).seq for t in ("status", "alerts", "source:acled")] == [2, 1, 1]


@pytest.mark.asyncio
async def test_a_failing_alert_evaluation_still_publishes_the_status(monkeypatch, caplog):
    """The status topic is the feed's heartbeat; a broken rule evaluation must not freeze it."""

    def broken(**kwargs):
        raise RuntimeError("rule evaluation exploded")

    monkeypatch.setattr("monitoring.broadcaster.evaluate_alerts", broken)
    broadcaster = Broadcaster(lease=AlwaysLeader(), interval=60, max_push_rate=2)
    await broadcaster.publish_once()
    assert (await get_store().latest(topic="status")).seq == 1
    assert broadcaster.ticks == 1
    assert "alert evaluation failed" in caplog.text


class CountingLeader(AlwaysLeader):
    def __init__(self) -> None:
        self.holds: list[float] = []

    async def hold(self) -> bool:
        self.holds.append(asyncio.get_running_loop().time())
        return True


@pytest.mark.asyncio
async def test_the_lease_is_renewed_while_a_slow_publish_runs():
    """A tick slower than the lease's life must not hand the feed to a standby."""
    lease = CountingLeader()
    broadcaster = Broadcaster(lease=lease, interval=0.2, max_push_rate=2)
    publishing = asyncio.Event()

    async def slow_publish() -> None:
        publishing.set()
        await asyncio.sleep(1.0)  # five intervals

    broadcaster.publish_once = slow_publish
    stop, task = await _run(broadcaster)
    await publishing.wait()
    started = asyncio.get_running_loop().time()
    await asyncio.sleep(0.9)
    stop.set()
    await task
    during = [t for t in lease.holds if started < t < started + 0.9]
    assert len(during) >= 3, f"lease renewed {len(during)} times in a 1 s publish with a 0.2 s interval"


@pytest.mark.asyncio
async def test_ticks_follow_the_interval(settings):
    broadcaster = Broadcaster(lease=AlwaysLeader(), interval=0.2, max_push_rate=2)
    stop, task = await _run(broadcaster)
    await asyncio.sleep(1.1)
    stop.set()
    await task
    assert 5 <= broadcaster.ticks <= 7


@pytest.mark.asyncio
async def test_a_burst_of_ingests_coalesces_into_a_few_pushes_and_the_last_has_them_all():
    broadcaster = Broadcaster(lease=AlwaysLeader(), interval=30, max_push_rate=2)
    stop, task = await _run(broadcaster)
    await _until(lambda: broadcaster.ticks == 1, timeout=5)
    loop = asyncio.get_running_loop()
    started = loop.time()

    def ingest(i: int) -> None:
        record_metrics(metrics=[MetricInput(source=f"s{i % 7}", geocoding_attempts=1, geocoding_successes=1)])

    for i in range(1000):
        await database_sync_to_async(ingest)(i)
    burst = loop.time() - started
    await asyncio.sleep(0.8)  # the last coalesced push lands at most 1 / rate after the last hint
    stop.set()
    await task
    pushes = broadcaster.ticks - 1
    assert 1 <= pushes <= burst * 2 + 2, (pushes, burst)
    latest = json.loads((await get_store().latest(topic="status")).text)
    assert latest["data"]["data_quality"]["reports"] == 1000


def test_the_hint_is_sent_only_when_the_transaction_commits(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    layer = get_channel_layer()
    mark_in_process_broadcaster(True)
    try:
        with transaction.atomic():
            request_status_push_on_commit(reason="test")
            transaction.set_rollback(True)
        with transaction.atomic():
            request_status_push_on_commit(reason="committed")

        async def drain() -> list[str]:
            reasons = []
            while True:
                try:
                    message = await asyncio.wait_for(layer.receive(BROADCASTER_CHANNEL), 0.2)
                except TimeoutError:
                    return reasons
                reasons.append(message["reason"])

        assert async_to_sync(drain)() == ["committed"]
    finally:
        mark_in_process_broadcaster(False)


def _foreign_insert(rows: int) -> None:
    """Another program's INSERT, over its own connection, naming only the columns it knows."""
    import psycopg
    from django.db import connection

    from monitoring.feed.db_changes import _conninfo

    with psycopg.connect(autocommit=True, **_conninfo("default")) as conn:
        conn.execute(
            f"INSERT INTO {connection.ops.quote_name('monitoring_dataqualitymetric')} "  # noqa: S608
            "(geocoding_attempts, geocoding_successes, validation_attempts, validation_passes, metric_type, source) "
            "SELECT 10, 9, 10, 10, 'batch', 'foreign' FROM generate_series(1, %s)",
            [rows],
        )


@pytest.mark.postgres
@pytest.mark.asyncio
async def test_a_write_by_another_program_is_pushed_early_through_the_database():
    broadcaster = Broadcaster(lease=AlwaysLeader(), interval=30, max_push_rate=2)
    stop, task = await _run(broadcaster)
    await _until(lambda: broadcaster.ticks == 1, timeout=5)
    await asyncio.sleep(0.3)  # the listener is connected
    await database_sync_to_async(_foreign_insert)(3)
    waited = await _until(lambda: broadcaster.ticks == 2, timeout=5)
    stop.set()
    await task
    assert waited < 5, "pushed before the 30 s tick"
    latest = json.loads((await get_store().latest(topic="status")).text)
    assert latest["data"]["data_quality"]["reports"] == 3
    assert latest["data"]["data_quality"]["by_source"][0]["source"] == "foreign"
