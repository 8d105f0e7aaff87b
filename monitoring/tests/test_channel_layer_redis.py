"""The configured channel layer against a real Redis: round trips, groups, and idle consumers."""

import asyncio
import uuid

import pytest
import redis.exceptions
from asgiref.sync import async_to_sync
from channels.layers import channel_layers
from channels_redis.core import RedisChannelLayer
from django.conf import settings

pytestmark = pytest.mark.redis
# Longer than channels-redis' 5 s BZPOPMIN and redis-py 8's default 5 s socket timeout.
IDLE_SECONDS = 6.5


def _project_layer():
    """A fresh instance of the configured layer (channels-redis pub/sub, the override's reader)."""
    backend = settings.CHANNEL_LAYERS["default"]["BACKEND"]
    assert backend == "conflict_monitor.overrides.channels_redis.PubSubChannelLayer"
    return channel_layers.make_backend("default")


def _core_layer(**host_overrides) -> RedisChannelLayer:
    """The core (list-based) layer with the project's host options, which is where #422 bites."""
    config = dict(settings.CHANNEL_LAYERS["default"]["CONFIG"])
    host = {**config["hosts"][0], **host_overrides}
    host = {k: v for k, v in host.items() if v is not None}
    return RedisChannelLayer(hosts=[host], prefix=f"test-{uuid.uuid4().hex}")


async def _close(layer) -> None:
    await layer.flush()
    if hasattr(layer, "close_pools"):
        await layer.close_pools()


async def _idle_then_receive(layer: RedisChannelLayer) -> dict:
    channel = await layer.new_channel()
    receiver = asyncio.ensure_future(layer.receive(channel))
    try:
        await asyncio.sleep(IDLE_SECONDS)
        await layer.send(channel, {"type": "status.update", "n": 1})
        return await asyncio.wait_for(receiver, 10)
    finally:
        receiver.cancel()
        await _close(layer)


def test_group_message_reaches_every_member():
    async def scenario():
        layer = _project_layer()
        try:
            first, second = await layer.new_channel(), await layer.new_channel()
            await layer.group_add("pipeline-status", first)
            await layer.group_add("pipeline-status", second)
            await layer.group_send("pipeline-status", {"type": "status.update", "seq": 7})
            got = [await asyncio.wait_for(layer.receive(ch), 5) for ch in (first, second)]
        finally:
            await _close(layer)
        return got

    assert async_to_sync(scenario)() == [{"type": "status.update", "seq": 7}] * 2


def test_an_idle_consumer_still_receives_on_the_project_layer():
    assert async_to_sync(_idle_then_receive)(_project_layer()) == {"type": "status.update", "n": 1}


def test_an_idle_consumer_on_the_core_layer_survives_with_the_project_host_options():
    """channels_redis#422: the configured socket timeout outlasts the core layer's 5 s blocking read."""
    assert async_to_sync(_idle_then_receive)(_core_layer()) == {"type": "status.update", "n": 1}


def test_the_library_default_timeout_kills_an_idle_core_consumer():
    """Proof that the trap is real, so the test above guards something: without the override it fails."""
    with pytest.raises(redis.exceptions.TimeoutError):
        async_to_sync(_idle_then_receive)(_core_layer(socket_timeout=None, retry_on_timeout=None))


@pytest.mark.parametrize(
    ("make_layer", "delivered"),
    [
        pytest.param(_project_layer, True, id="project-pubsub-layer"),
        # The trap is real: the core layer drops the member, so the project's result means something.
        pytest.param(_core_layer, False, id="core-layer"),
    ],
)
def test_group_membership_outlives_the_core_layers_group_expiry(monkeypatch, make_layer, delivered):
    """channels-redis' core layer drops group members after group_expiry (24 h) while the socket stays
    open; the project's pub/sub layer keeps membership in the process, so a day-old socket still gets pushes."""
    import time

    layer = make_layer()
    group = f"expiry-{uuid.uuid4().hex[:8]}"

    async def scenario() -> bool:
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
        real = time.time
        monkeypatch.setattr(time, "time", lambda: real() + 25 * 3600)
        await layer.group_send(group, {"type": "feed.frame", "n": 1})
        try:
            received = await asyncio.wait_for(layer.receive(channel), timeout=2)
        except TimeoutError:
            received = None
        await _close(layer)
        return received == {"type": "feed.frame", "n": 1}

    assert async_to_sync(scenario)() is delivered
