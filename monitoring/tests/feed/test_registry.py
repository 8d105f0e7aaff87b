"""Which feed backends a process uses: one in-memory pair without Redis; with Redis, one pair per event
loop (a redis.asyncio client cannot cross loops); ``reset`` forgets them."""

import asyncio

import pytest
from redis.driver_info import DriverInfo

from monitoring.feed import registry
from monitoring.feed.connections import MemoryConnectionRegistry, RedisConnectionRegistry
from monitoring.feed.memory_store import MemoryFeedStore
from monitoring.feed.redis_store import RedisFeedStore


async def _backends():
    return registry.get_store(), registry.get_connection_registry()


def _in_new_loop():
    return asyncio.run(_backends())


@pytest.fixture
def memory(settings):
    settings.REDIS_URL = None
    settings.WEBSOCKET_HISTORY_LENGTH = 17
    registry.reset()
    yield
    registry.reset()


@pytest.mark.usefixtures("memory")
def test_without_redis_every_loop_shares_one_in_memory_pair():
    store, connections = _in_new_loop()
    assert isinstance(store, MemoryFeedStore) and isinstance(connections, MemoryConnectionRegistry)
    assert store.history_length == 17
    assert _in_new_loop() == (store, connections)


@pytest.mark.usefixtures("memory")
def test_reset_forgets_the_backends():
    store, _ = _in_new_loop()
    registry.reset()
    assert _in_new_loop()[0] is not store


@pytest.mark.usefixtures("redis_feed")
def test_with_redis_each_event_loop_gets_its_own_pair_on_the_shared_prefix(settings):
    async def twice():
        return await _backends(), await _backends()

    (store, connections), again = asyncio.run(twice())
    assert isinstance(store, RedisFeedStore) and isinstance(connections, RedisConnectionRegistry)
    assert again == (store, connections)
    assert store.client is connections.client
    assert store.prefix == connections.prefix == settings.CHANNEL_LAYER_PREFIX
    other_store, _ = _in_new_loop()
    assert other_store is not store


@pytest.mark.usefixtures("redis_feed")
def test_the_redis_client_waits_for_a_free_connection_with_the_configured_limits(settings):
    settings.REDIS_MAX_CONNECTIONS = 3
    pool = registry.redis_client().connection_pool
    assert pool.max_connections == 3
    assert pool.timeout == 5
    assert pool.connection_kwargs["socket_timeout"] == settings.REDIS_SOCKET_TIMEOUT


@pytest.mark.usefixtures("redis_feed")
def test_every_new_redis_connection_reuses_one_driver_info_with_redis_pys_defaults():
    """Made per connection, it read the package's metadata each time: a sixth of a server's CPU in a flood."""
    pool = registry.redis_client().connection_pool
    first, second = pool.make_connection(), pool.make_connection()
    assert first.driver_info is second.driver_info is registry.driver_info()
    assert first.driver_info == DriverInfo()  # the name and version redis-py would send itself
