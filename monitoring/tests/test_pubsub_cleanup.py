"""The pub/sub channel layer keeps a queue per socket and a member set per group in the process:
sockets that come and go must leave neither behind (a slow leak in a server that runs for weeks)."""

from __future__ import annotations

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from conflict_monitor.asgi import application

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True), pytest.mark.redis]
PATH = "/ws/monitoring/pipeline-status"


async def test_connect_disconnect_cycles_leave_no_queues_or_group_members(redis_feed):
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
    assert loop_layer.channels == {}
    assert all(not members for members in loop_layer.groups.values())
