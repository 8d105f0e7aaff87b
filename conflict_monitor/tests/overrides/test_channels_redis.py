"""The pub/sub layer on real Redis: messages arrive as they are sent, while an idle reader wakes about
once a second instead of ten times."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest
import pytest_asyncio

from conflict_monitor.overrides import channels_redis as layer_module
from conflict_monitor.overrides.channels_redis import PubSubChannelLayer

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def channel_layer():
    url = os.environ.get("REDIS_URL")
    assert url, "set REDIS_URL to a Redis server (make test does)"
    layer = PubSubChannelLayer(hosts=[{"address": url, "socket_timeout": 15}], prefix=f"t{uuid.uuid4().hex[:10]}")
    yield layer
    await layer.flush()


async def test_a_group_message_reaches_a_subscribed_channel_while_the_reader_waits(channel_layer):
    channel = await channel_layer.new_channel()
    await channel_layer.group_add("feed", channel)
    await asyncio.sleep(0.3)  # the reader is now inside a wait with nothing to read
    for number in range(3):
        await channel_layer.group_send("feed", {"type": "feed.frame", "n": number})
        message = await asyncio.wait_for(channel_layer.receive(channel), timeout=layer_module.RECEIVE_WAIT / 2)
        assert message == {"type": "feed.frame", "n": number}


async def test_an_idle_subscribed_reader_asks_redis_about_once_a_second(channel_layer, monkeypatch):
    channel = await channel_layer.new_channel()
    await channel_layer.group_add("feed", channel)
    (shard,) = channel_layer._get_layer()._shards
    await asyncio.sleep(0.5)  # past the subscribe confirmations, which end a wait at once
    calls = 0
    get_message = shard._pubsub.get_message

    async def counted(*args, **kwargs):
        nonlocal calls
        calls += 1
        return await get_message(*args, **kwargs)

    monkeypatch.setattr(shard._pubsub, "get_message", counted)
    await asyncio.sleep(2.5)
    # Upstream's 0.1 s timeout would make this about 25.
    assert 1 <= calls <= 4
