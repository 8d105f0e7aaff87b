"""The pub/sub channel layer keeps a queue per channel and a member set per group in the process, and
the fan-out a member set per topic: sockets that come and go must leave none of them behind (a slow
leak in a server that runs for weeks). The process keeps one channel, its fan-out's, whatever the
number of sockets."""

from __future__ import annotations

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from conflict_monitor.asgi import application
from monitoring.feed.fanout import get_fanout

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True), pytest.mark.redis]
PATH = "/ws/monitoring/pipeline-status"


async def test_connect_disconnect_cycles_leave_only_the_fanout_channel_and_no_members(redis_feed):
    layer = get_channel_layer()
    loop_layer = layer._get_layer()
    for _ in range(40):
        communicator = WebsocketCommunicator(application, PATH)
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        await communicator.receive_from(timeout=5)  # the snapshot: the socket is fully set up
        await communicator.send_json_to({"type": "subscribe", "topic": "alerts"})
        await communicator.receive_from(timeout=5)
        await communicator.disconnect()
    fanout = get_fanout()
    assert set(loop_layer.channels) == {fanout.channel}
    assert all(not members for members in loop_layer.groups.values())
    assert fanout.members == {}
