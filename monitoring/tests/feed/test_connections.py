"""Connection caps across processes on real Redis: counts per process, healed when a process dies."""

from __future__ import annotations

import os
import uuid

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from monitoring.feed.connections import ACCEPTED, IP_CAP, TOTAL_CAP, RedisConnectionRegistry

pytestmark = [pytest.mark.redis, pytest.mark.asyncio]


@pytest_asyncio.fixture
async def processes(settings):
    """Two registries, as two server processes would have, sharing one Redis prefix."""
    settings.WEBSOCKET_MAX_CONNECTIONS = 2
    settings.WEBSOCKET_MAX_CONNECTIONS_PER_IP = 2
    prefix = f"caps-{uuid.uuid4().hex[:8]}"
    client = aioredis.Redis.from_url(os.environ["REDIS_URL"])
    made = [RedisConnectionRegistry(client=client, prefix=prefix) for _ in range(2)]
    yield made
    for registry in made:
        if registry._heartbeat is not None:
            registry._heartbeat.cancel()
    keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_the_total_cap_counts_every_process(processes):
    first, second = processes
    assert await first.acquire(ip="10.0.0.1") == ACCEPTED
    assert await second.acquire(ip="10.0.0.2") == ACCEPTED
    assert await first.acquire(ip="10.0.0.3") == TOTAL_CAP
    await second.release(ip="10.0.0.2")
    assert await first.acquire(ip="10.0.0.3") == ACCEPTED


async def test_the_per_ip_cap_counts_every_process(processes, settings):
    settings.WEBSOCKET_MAX_CONNECTIONS = 10
    settings.WEBSOCKET_MAX_CONNECTIONS_PER_IP = 1
    first, second = processes
    assert await first.acquire(ip="10.0.0.1") == ACCEPTED
    assert await second.acquire(ip="10.0.0.1") == IP_CAP
    assert await second.acquire(ip="10.0.0.2") == ACCEPTED


async def test_a_dead_processs_connections_stop_counting_once_its_heartbeat_expires(processes):
    crashed, survivor = processes
    assert await crashed.acquire(ip="10.0.0.1") == ACCEPTED
    assert await crashed.acquire(ip="10.0.0.2") == ACCEPTED
    assert await survivor.acquire(ip="10.0.0.3") == TOTAL_CAP
    # The process dies without releasing: its heartbeat stops and the key expires (TTL elapsed here).
    crashed._heartbeat.cancel()
    await crashed.client.delete(crashed._alive_prefix() + crashed.process_id)
    assert await survivor.acquire(ip="10.0.0.3") == ACCEPTED
    counts = await survivor.client.hgetall(f"{survivor.prefix}:ws:connections")
    assert {owner.decode() for owner in counts} == {survivor.process_id}
