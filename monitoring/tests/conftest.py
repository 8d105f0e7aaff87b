"""Shared fixtures: the live feed on the in-memory backends and on real Redis, and the log records a test
collects (``collected``)."""

from __future__ import annotations

import json
import logging
import os
import uuid

import pytest
import redis

from monitoring import logs
from monitoring.feed import registry


def _redis_settings(settings, prefix: str) -> None:
    url = os.environ.get("REDIS_URL")
    assert url, "set REDIS_URL to a Redis server (make test does)"
    settings.REDIS_URL = url
    settings.CHANNEL_LAYER_PREFIX = prefix
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "conflict_monitor.overrides.channels_redis.PubSubChannelLayer",
            "CONFIG": {"hosts": [{"address": url, "socket_timeout": 15}], "prefix": prefix},
        }
    }
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url, "KEY_PREFIX": prefix}
    }


def _configure(settings, kind: str):
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    if kind == "memory":
        settings.REDIS_URL = None
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    else:
        _redis_settings(settings, prefix)
    settings.WEBSOCKET_EMBEDDED_BROADCASTER = False
    settings.MONITORING_PUBLIC_READ = True
    registry.reset()
    yield kind
    registry.reset()
    if kind == "redis":
        client = redis.Redis.from_url(settings.REDIS_URL)
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)
        client.close()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def feed_backend(request, settings):
    """The feed's backends, in-memory or Redis (keys under a prefix of this test's own)."""
    yield from _configure(settings, request.param)


@pytest.fixture
def redis_feed(settings):
    """The feed on real Redis only (multi-process features: leases, shared caps)."""
    yield from _configure(settings, "redis")


class Collected(logging.Handler):
    """The records that reach the root's handlers, request id added as LOGGING's handler adds it."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.addFilter(logs.RequestIdFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def access(self, event: str = "http_request") -> list[dict]:
        """The access records of ``event``, as the JSON formatter writes them."""
        return [
            json.loads(logs.JsonFormatter().format(record))
            for record in self.records
            if record.name == "monitoring.access" and getattr(record, "event", None) == event
        ]


@pytest.fixture
def collected():
    handler = Collected()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
