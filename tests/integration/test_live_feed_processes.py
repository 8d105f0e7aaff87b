"""The live feed across real processes: two daphne servers and two broadcasters on Redis and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import urllib.request

import pytest
import redis
import websockets

from tests.integration.cluster import Cluster, running_cluster

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
]
INTERVAL = 2.0
STALE_AFTER = 1.3 * INTERVAL  # the default WEBSOCKET_STALE_AFTER
STATUS = "pipeline_status_update"


@pytest.fixture(scope="module")
def cluster(django_db_setup, tmp_path_factory):
    with running_cluster(
        logs=tmp_path_factory.mktemp("cluster"),
        servers=("a", "b"),
        broadcasters=2,
        WEBSOCKET_BROADCAST_INTERVAL=str(INTERVAL),
        WEBSOCKET_HISTORY_LENGTH="20",
        # A tiny Redis pool: a reconnect storm must wait for connections, not fail handshakes.
        REDIS_MAX_CONNECTIONS="8",
        WEBSOCKET_MAX_CONNECTIONS_PER_IP="1000",
    ) as cluster:
        yield cluster


@pytest.fixture
def same_feed(cluster, settings):
    """Point this test process at the cluster's Redis keys, to publish into its feed directly."""
    from monitoring.feed import registry

    settings.REDIS_URL = cluster.env["REDIS_URL"]
    settings.CHANNEL_LAYER_PREFIX = cluster.prefix
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "conflict_monitor.overrides.channels_redis.PubSubChannelLayer",
            "CONFIG": {
                "hosts": [{"address": cluster.env["REDIS_URL"], "socket_timeout": 15}],
                "prefix": cluster.prefix,
            },
        }
    }
    registry.reset()
    yield
    registry.reset()


def feed_url(cluster: Cluster, server: str, query: str = "") -> str:
    return f"ws://127.0.0.1:{cluster.port(server)}/ws/monitoring/pipeline-status{query}"


async def next_of(ws, kind: str, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), max(deadline - time.monotonic(), 0.01)))
        if message["type"] == kind:
            return message


def post_metric(cluster: Cluster, server: str, key: str) -> float:
    body = json.dumps({"source": "acled", "geocoding_attempts": 50, "geocoding_successes": 45}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{cluster.port(server)}/api/v1/monitoring/metrics",
        data=body,
        headers={"Content-Type": "application/json", "Authorization": f"Token {key}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
    return time.monotonic()


async def test_clients_on_two_processes_get_identical_frames_with_the_same_seq(cluster):
    async with websockets.connect(feed_url(cluster, "a")) as on_a, websockets.connect(feed_url(cluster, "b")) as on_b:
        await next_of(on_a, STATUS), await next_of(on_b, STATUS)
        from_a = {m["seq"]: m for m in [await next_of(on_a, STATUS, timeout=3 * INTERVAL) for _ in range(2)]}
        from_b = {m["seq"]: m for m in [await next_of(on_b, STATUS, timeout=3 * INTERVAL) for _ in range(2)]}
    common = from_a.keys() & from_b.keys()
    assert common, (from_a.keys(), from_b.keys())
    assert all(from_a[seq] == from_b[seq] for seq in common)
    seqs = sorted(from_a)
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))


async def test_an_ingest_on_one_process_reaches_clients_of_both_within_a_second(cluster):
    from channels.db import database_sync_to_async

    from monitoring.services.tokens import create_ingest_token

    _, key = await database_sync_to_async(create_ingest_token)(name="integration")
    async with websockets.connect(feed_url(cluster, "a")) as on_a, websockets.connect(feed_url(cluster, "b")) as on_b:
        before = (await next_of(on_a, STATUS))["data"]["data_quality"]["reports"]
        await next_of(on_b, STATUS)
        committed = await asyncio.to_thread(post_metric, cluster, "a", key)

        async def receipt(ws) -> float:
            while True:
                message = await next_of(ws, STATUS, timeout=5)
                if message["data"]["data_quality"]["reports"] > before:
                    return time.monotonic() - committed

        delays = await asyncio.gather(receipt(on_a), receipt(on_b))
    assert max(delays) <= 1.0, delays


async def test_resume_inside_the_history_replays_and_outside_it_resyncs(cluster, same_feed):
    from monitoring.services.feed import publish

    topic = "source:resume-test"
    async with websockets.connect(feed_url(cluster, "a")) as ws:
        await next_of(ws, STATUS)
        await ws.send(json.dumps({"type": "subscribe", "topic": topic}))
        await next_of(ws, "subscribed")
        frames = [await publish(topic=topic, data={"n": i}) for i in range(30)]
        for _ in range(30):
            await next_of(ws, "source_status_update")
        epoch = frames[0].epoch

        await ws.send(json.dumps({"type": "resume", "topic": topic, "since_seq": frames[26].seq, "epoch": epoch}))
        assert (await next_of(ws, "resumed"))["data"]["replayed"] == 3
        replayed = [await next_of(ws, "source_status_update") for _ in range(3)]
        assert [m["seq"] for m in replayed] == [f.seq for f in frames[27:]]

        await ws.send(json.dumps({"type": "resume", "topic": topic, "since_seq": frames[1].seq, "epoch": epoch}))
        resync = await next_of(ws, "resync")
        assert resync["data"]["reason"] == "history_trimmed"
        assert (await next_of(ws, "source_status_update"))["seq"] == frames[-1].seq


async def test_lost_history_changes_the_epoch_and_clients_resync(cluster, same_feed):
    from monitoring.services.feed import publish

    topic = "source:epoch-test"
    async with websockets.connect(feed_url(cluster, "b")) as ws:
        await next_of(ws, STATUS)
        await ws.send(json.dumps({"type": "subscribe", "topic": topic}))
        await next_of(ws, "subscribed")
        first = await publish(topic=topic, data={"n": 1})
        await next_of(ws, "source_status_update")
        client = redis.Redis.from_url(cluster.env["REDIS_URL"])
        client.delete(f"{cluster.prefix}:feed:{topic}:state", f"{cluster.prefix}:feed:{topic}:history")
        client.close()
        second = await publish(topic=topic, data={"n": 2})
        assert second.epoch != first.epoch and second.seq == 1
        resync = await next_of(ws, "resync")
        assert resync["data"] == {"topic": topic, "reason": "epoch_changed", "latest_seq": 1}
        assert (await next_of(ws, "source_status_update"))["epoch"] == second.epoch


async def test_a_reconnect_storm_through_a_small_redis_pool_is_served_without_errors(cluster):
    async def connect_and_read() -> int:
        async with websockets.connect(feed_url(cluster, "b"), open_timeout=30) as ws:
            return (await next_of(ws, STATUS, timeout=30))["seq"]

    seqs = await asyncio.gather(*(connect_and_read() for _ in range(300)))
    assert len(seqs) == 300 and all(seq >= 1 for seq in seqs)
    log = cluster.log_tail("b", lines=400)
    assert "Traceback" not in log, log[log.find("Traceback") :][:4000]


async def test_killing_the_active_broadcaster_hands_over_within_two_intervals(cluster):
    client = redis.Redis.from_url(cluster.env["REDIS_URL"])
    owner = client.get(f"{cluster.prefix}:broadcaster:lease")
    client.close()
    assert owner, "no broadcaster holds the lease"
    pid = int(owner.decode().split(":")[1])
    assert pid in {p.pid for p in cluster.broadcasters}
    episodes = cluster.metric("a", "conflict_monitor_feed_stale_total", reason="no_update")
    async with websockets.connect(feed_url(cluster, "a")) as ws:
        last = await next_of(ws, STATUS)
        last = await next_of(ws, STATUS, timeout=3 * INTERVAL)  # a live tick, not the snapshot
        last_at = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        between = []
        while (following := json.loads(await asyncio.wait_for(ws.recv(), 4 * INTERVAL)))["type"] != STATUS:
            between.append((time.monotonic() - last_at, following))
        gap = time.monotonic() - killed
    assert following["seq"] == last["seq"] + 1
    assert gap <= 2 * INTERVAL + 0.5, gap
    # Never a frozen "healthy": the server flags the status stale before the standby takes over.
    stale = [(at, frame) for at, frame in between if frame["type"] == "status_stale"]
    assert stale, f"no status_stale between the kill and the handover: {[f['type'] for _, f in between]}"
    first_at, first = stale[0]
    assert first["data"]["reason"] == "no_update" and first["data"]["last_seq"] == last["seq"]
    assert first_at <= STALE_AFTER + 0.5, first_at
    assert cluster.metric("a", "conflict_monitor_feed_stale_total", reason="no_update") > episodes
    assert cluster.metric("a", "conflict_monitor_feed_status_stale") == 0  # the handover ended it
    print(
        f"\nactive broadcaster SIGKILLed; status_stale {first_at:.2f} s after the last status, next status "
        f"{gap:.2f} s after the kill (interval {INTERVAL:g} s), seq unbroken"
    )
    cluster.start_broadcaster()  # back to two for any later test
