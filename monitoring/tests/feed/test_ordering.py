"""A connection's outgoing order without sockets: requests run alone, frames offered meanwhile follow."""

import asyncio

import pytest

from monitoring import events
from monitoring.feed.delivery import Delivery
from monitoring.feed.frames import Frame
from monitoring.feed.memory_store import MemoryFeedStore
from monitoring.feed.ordering import InOrder
from monitoring.tests.feed.readers import StoreReader

pytestmark = pytest.mark.asyncio


async def _setup():
    store = MemoryFeedStore(history_length=50)
    delivery = Delivery(reader=StoreReader(store), history_limit=50)
    delivery.follow(events.STATUS_TOPIC)
    sent: list = []

    async def send(item):
        sent.append(item.seq if isinstance(item, Frame) else item)

    async def publish():
        parts = events.topic_frame_parts(topic=events.STATUS_TOPIC, data={})
        return await store.publish(topic=events.STATUS_TOPIC, parts=parts)

    return store, delivery, InOrder(delivery=delivery, send=send, bound=50), sent, publish


async def test_frames_offered_during_a_request_go_out_after_it_in_seq_order():
    _, delivery, order, sent, publish = await _setup()
    await publish()
    async with order.alone():
        for item in await delivery.snapshot(events.STATUS_TOPIC):
            await order.send(item)
        await order.offer(await publish())
        await order.notice("stale!")
        await order.offer(await publish())
        assert sent == [1], "nothing overtakes the request"
    assert sent == [1, 2, "stale!", 3]


async def test_the_next_frame_goes_straight_out_and_a_gap_is_drained_in_the_background():
    _, delivery, order, sent, publish = await _setup()
    await publish()
    for item in await delivery.snapshot(events.STATUS_TOPIC):
        await order.send(item)
    await order.offer(await publish())
    assert sent == [1, 2]
    await publish()  # missed by this connection
    await order.offer(await publish())
    await asyncio.wait_for(order.drainer, timeout=2)
    assert sent == [1, 2, 3, 4]
    assert order.backlog is None
