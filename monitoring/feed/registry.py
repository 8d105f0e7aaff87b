"""Feed store and connection registry: one pair per event loop (a redis.asyncio client cannot
cross loops), or one in-memory pair for the single-process embedded default."""

from __future__ import annotations

import asyncio
import functools
import weakref
from dataclasses import dataclass

import redis.asyncio as aioredis
from django.conf import settings
from redis.driver_info import DriverInfo

from monitoring.feed.connections import MemoryConnectionRegistry, RedisConnectionRegistry
from monitoring.feed.memory_store import MemoryFeedStore
from monitoring.feed.redis_store import RedisFeedStore
from monitoring.feed.store import FeedStore


@dataclass
class _Backends:
    store: FeedStore
    connections: MemoryConnectionRegistry | RedisConnectionRegistry


_memory: _Backends | None = None
_per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Backends] = weakref.WeakKeyDictionary()


@functools.cache
def driver_info() -> DriverInfo:
    """What every connection reports in ``CLIENT SETINFO`` (redis-py's defaults), made once: redis-py
    otherwise makes one per new connection and reads its version from the installed package's
    metadata each time, a sixth of a server's CPU while a connection flood grew the pool."""
    return DriverInfo()


def redis_client() -> aioredis.Redis:
    """A client with the project's timeouts and a pool that waits, rather than fails, when full."""
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.REDIS_URL,
        driver_info=driver_info(),
        max_connections=settings.REDIS_MAX_CONNECTIONS,
        timeout=5,
        socket_timeout=settings.REDIS_SOCKET_TIMEOUT,
        socket_connect_timeout=5,
        health_check_interval=30,
    )
    return aioredis.Redis(connection_pool=pool)


def _backends() -> _Backends:
    global _memory
    if not settings.REDIS_URL:
        if _memory is None:
            _memory = _Backends(
                store=MemoryFeedStore(history_length=settings.WEBSOCKET_HISTORY_LENGTH),
                connections=MemoryConnectionRegistry(),
            )
        return _memory
    loop = asyncio.get_running_loop()
    backends = _per_loop.get(loop)
    if backends is None:
        client = redis_client()
        prefix = settings.CHANNEL_LAYER_PREFIX
        backends = _Backends(
            store=RedisFeedStore(client=client, prefix=prefix, history_length=settings.WEBSOCKET_HISTORY_LENGTH),
            connections=RedisConnectionRegistry(client=client, prefix=prefix),
        )
        _per_loop[loop] = backends
    return backends


def get_store() -> FeedStore:
    return _backends().store


def get_connection_registry() -> MemoryConnectionRegistry | RedisConnectionRegistry:
    return _backends().connections


def reset() -> None:
    """Forget cached backends (tests that change settings between cases)."""
    global _memory
    _memory = None
    _per_loop.clear()
