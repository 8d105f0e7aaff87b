"""Programs that follow the private feed, against a real server (the launcher and a broadcaster on PostgreSQL and
Redis, with ``MONITORING_PUBLIC_READ`` off): a read key opens the feed by header and by ticket; no key, an ingest
key and a revoked read key are refused, and a read key cannot write; ``follow()`` yields the documents in seq
order as metrics arrive, resumes after the server is killed and restarted with nothing repeated or missed, and
starts over from a fresh snapshot when the feed's history is lost (a new epoch)."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Iterator

import httpx
import pytest
import redis
import websockets
from channels.db import database_sync_to_async
from conflict_monitor_client import (
    AsyncMonitor,
    AuthenticationFailed,
    MetricsNotSent,
    Monitor,
    PermissionDenied,
    RetryPolicy,
    StatusUpdate,
)

from tests.clients.python.helpers import on_server, revoke, stored_metrics
from tests.integration.cluster import Cluster, running_cluster

pytestmark = [pytest.mark.asyncio]
INTERVAL = 1.0
FAST = RetryPolicy(initial_delay=0.2, multiplier=2, max_delay=1.0)
METRICS_TOKEN = "follow-tests-metrics"
PATH = "/ws/monitoring/pipeline-status"


@pytest.fixture(scope="module")
def private_cluster(django_db_setup, tmp_path_factory) -> Iterator[Cluster]:
    with running_cluster(
        logs=tmp_path_factory.mktemp("follow-server"),
        servers=("a",),
        broadcasters=1,
        MONITORING_PUBLIC_READ="0",
        WEBSOCKET_BROADCAST_INTERVAL=str(INTERVAL),
        MONITORING_METRICS_TOKEN=METRICS_TOKEN,
    ) as cluster:
        yield cluster


@pytest.fixture
def url(private_cluster: Cluster) -> str:
    return f"http://127.0.0.1:{private_cluster.port('a')}"


@pytest.fixture
def read_key(transactional_db) -> str:
    from monitoring.services.tokens import create_read_token

    return create_read_token(name="follower")[1]


@pytest.fixture
def ingest_key(transactional_db) -> str:
    from monitoring.services.tokens import create_ingest_token

    return create_ingest_token(name="pipeline")[1]


async def _first_frame(url: str, **headers: str) -> dict:
    async with websockets.connect(url, additional_headers=headers, open_timeout=10) as ws:
        return json.loads(await asyncio.wait_for(ws.recv(), 10))


async def _close_code(url: str, **headers: str) -> int | None:
    async with websockets.connect(url, additional_headers=headers, open_timeout=10) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    return closed.value.rcvd.code if closed.value.rcvd else None


async def _updates(feed, n: int, *, timeout: float = 20) -> list[StatusUpdate]:
    async with asyncio.timeout(timeout):
        return [await anext(feed) for _ in range(n)]


def _consecutive(updates: list[StatusUpdate]) -> bool:
    return all(b.seq == a.seq + 1 and b.epoch == a.epoch for a, b in zip(updates, updates[1:], strict=False))


async def _restart(cluster: Cluster, *, between=None) -> None:
    """Kill server a (no close frame reaches the client), wait while the broadcaster publishes, start it again."""
    port = await asyncio.to_thread(cluster.stop_server, "a", sig=signal.SIGKILL)
    if between is not None:
        between()
    await asyncio.sleep(2 * INTERVAL)
    cluster.start_server("a", port=port)
    await asyncio.to_thread(cluster.wait_ready)


@on_server
async def test_a_read_key_opens_the_private_feed_by_header_and_by_ticket(private_cluster, url, read_key):
    socket = url.replace("http:", "ws:") + PATH
    assert (await _first_frame(socket, Authorization=f"Bearer {read_key}"))["type"] == "pipeline_status_update"
    async with httpx.AsyncClient() as http:
        answer = await http.post(url + "/api/v1/monitoring/ws-ticket", headers={"Authorization": f"Bearer {read_key}"})
    assert answer.status_code == 201
    ticket = answer.json()["ticket"]
    assert (await _first_frame(f"{socket}?ticket={ticket}"))["type"] == "pipeline_status_update"
    assert await _close_code(f"{socket}?ticket={ticket}") == 4403  # used once


@on_server
async def test_no_key_an_ingest_key_and_a_revoked_read_key_are_refused(private_cluster, url, read_key, ingest_key):
    socket = url.replace("http:", "ws:") + PATH
    assert await _close_code(socket) == 4401
    assert await _close_code(socket, Authorization=f"Bearer {ingest_key}") == 4403
    async with AsyncMonitor(url, ingest_key) as monitor:
        with pytest.raises(PermissionDenied, match="ingest key cannot open the live feed"):
            await _updates(aiter(monitor.follow(reconnect=FAST)), 1)
    await database_sync_to_async(revoke)(read_key)
    assert await _close_code(socket, Authorization=f"Bearer {read_key}") == 4403
    async with AsyncMonitor(url, read_key) as monitor:
        with pytest.raises(AuthenticationFailed) as refused:
            await _updates(aiter(monitor.follow(reconnect=FAST)), 1)
    assert refused.value.close_code == 4403


@on_server
async def test_a_read_key_cannot_write(private_cluster, url, read_key):
    def write() -> tuple[PermissionDenied, MetricsNotSent]:
        with Monitor(url, read_key) as monitor:
            with pytest.raises(PermissionDenied) as run_refused:
                monitor.start_run("acled", "scrape")
            with pytest.raises(MetricsNotSent) as metric_refused:
                monitor.report("acled", geocoding_attempts=1)
        return run_refused.value, metric_refused.value

    run_refused, metric_refused = await asyncio.to_thread(write)
    assert (run_refused.status, run_refused.code) == (403, "forbidden")
    assert isinstance(metric_refused.__cause__, PermissionDenied) and metric_refused.status == 403
    assert await database_sync_to_async(stored_metrics)() == []


@on_server
async def test_follow_yields_the_documents_in_seq_order_as_metrics_arrive(private_cluster, url, read_key, ingest_key):
    def attempts(update: StatusUpdate) -> int:
        rows = update.status["data_quality"]["by_source"]
        return next((row["geocoding_attempts"] for row in rows if row["source"] == "follow-test"), 0)

    async with (
        AsyncMonitor(url, read_key) as reader,
        AsyncMonitor(url, ingest_key) as pipeline,
        reader.follow(reconnect=FAST) as feed,
    ):
        updates = aiter(feed)
        seen = await _updates(updates, 1)
        for n in (1, 2, 3):
            await pipeline.report("follow-test", geocoding_attempts=10, geocoding_successes=9)
            async with asyncio.timeout(15):
                while attempts(seen[-1]) != 10 * n:
                    seen.append(await anext(updates))
    assert seen[0].resynced and not any(update.resynced for update in seen[1:])
    assert _consecutive(seen), [update.seq for update in seen]
    assert [attempts(update) for update in seen] == sorted(attempts(update) for update in seen)


@on_server
async def test_follow_resumes_after_a_server_kill_with_nothing_repeated_or_missed(private_cluster, url, read_key):
    async with AsyncMonitor(url, read_key) as monitor, monitor.follow(reconnect=FAST) as feed:
        updates = aiter(feed)
        before = await _updates(updates, 2)
        await _restart(private_cluster)
        after = await _updates(updates, 4)
    assert _consecutive(before + after), [update.seq for update in before + after]
    assert not any(update.resynced for update in after)
    # The new process served the client's resume from history (the frames published while it was down).
    assert private_cluster.metric("a", "conflict_monitor_ws_resumes_total", outcome="replayed") == 1


@on_server
async def test_lost_history_is_a_new_epoch_and_follow_starts_over_from_a_fresh_snapshot(private_cluster, url, read_key):
    def forget_history() -> None:
        client = redis.Redis.from_url(private_cluster.env["REDIS_URL"])
        prefix = f"{private_cluster.prefix}:feed:status"
        try:
            client.delete(f"{prefix}:state", f"{prefix}:history")
        finally:
            client.close()

    async with AsyncMonitor(url, read_key) as monitor, monitor.follow(reconnect=FAST) as feed:
        updates = aiter(feed)
        (first,) = await _updates(updates, 1)
        # While connected: the next publish starts a new epoch, and the server resyncs the socket.
        forget_history()
        live = await _updates(updates, 2)
        # While disconnected: the client resumes with an epoch the server no longer has.
        await _restart(private_cluster, between=forget_history)
        reconnected = await _updates(updates, 2)
    assert live[0].resynced and live[0].epoch != first.epoch and not live[1].resynced
    assert reconnected[0].resynced and reconnected[0].epoch not in (first.epoch, live[0].epoch)
    assert _consecutive(live) and _consecutive(reconnected)
    assert private_cluster.metric("a", "conflict_monitor_ws_resumes_total", outcome="resync") == 1
