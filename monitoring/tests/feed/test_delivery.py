"""The delivery engine without sockets: order, gap fill, resync, restart from a snapshot, resume."""

import json

import pytest

from monitoring import events
from monitoring.feed.delivery import REPLAYED, RESYNCED, Delivery
from monitoring.feed.frames import Frame
from monitoring.feed.memory_store import MemoryFeedStore
from monitoring.tests.feed.readers import StoreReader

pytestmark = pytest.mark.asyncio


async def publish(store, topic=events.STATUS_TOPIC, n=1, message_type=None, data=None) -> list[Frame]:
    frames = []
    for i in range(n):
        parts = events.topic_frame_parts(topic=topic, data=data or {"n": i}, message_type=message_type)
        frames.append(await store.publish(topic=topic, parts=parts))
    return frames


def kinds(out) -> list:
    return [("frame", o.seq) if isinstance(o, Frame) else json.loads(o)["type"] for o in out]


@pytest.fixture
def store():
    return MemoryFeedStore(history_length=5)


@pytest.fixture
def delivery(store):
    engine = Delivery(reader=StoreReader(store), history_limit=5)
    engine.follow(events.STATUS_TOPIC)
    return engine


async def test_the_snapshot_starts_a_topic_and_the_next_frame_takes_the_fast_path(store, delivery):
    first, second = await publish(store, n=2)
    assert kinds(await delivery.snapshot(events.STATUS_TOPIC)) == [("frame", 2)]
    (third,) = await publish(store)
    assert delivery.take_if_next(third) and delivery.cursors[events.STATUS_TOPIC].seq == 3
    assert not delivery.take_if_next(third), "a frame is taken once"
    assert delivery.epoch() == third.epoch


async def test_a_frame_already_delivered_is_dropped(store, delivery):
    await publish(store, n=2)
    await delivery.snapshot(events.STATUS_TOPIC)
    old = (await store.since(topic=events.STATUS_TOPIC, epoch=delivery.epoch(), since_seq=0, limit=5)).frames[0]
    assert await delivery.deliver(old) == []


async def test_a_gap_is_filled_from_history_in_order(store, delivery):
    await publish(store)
    await delivery.snapshot(events.STATUS_TOPIC)
    *_, last = await publish(store, n=3)
    assert kinds(await delivery.deliver(last)) == [("frame", 2), ("frame", 3), ("frame", 4)]


async def test_a_gap_history_no_longer_holds_is_a_resync_then_the_snapshot_frame(store, delivery):
    await publish(store)
    await delivery.snapshot(events.STATUS_TOPIC)
    *_, last = await publish(store, n=8)  # history keeps 5
    out = await delivery.deliver(last)
    assert kinds(out) == ["resync", ("frame", 9)]
    assert json.loads(out[0])["data"]["reason"] == "history_trimmed"


async def test_a_store_that_cannot_answer_is_a_resync_not_an_error(store, delivery):
    await publish(store)
    await delivery.snapshot(events.STATUS_TOPIC)
    *_, last = await publish(store, n=3)
    delivery.reader.broken = True
    out = await delivery.deliver(last)
    assert json.loads(out[0])["data"]["reason"] == "history_unavailable"
    assert out[-1] == last


async def test_a_new_epoch_on_the_alerts_topic_restarts_from_its_snapshot_before_the_change(store):
    delivery = Delivery(reader=StoreReader(store), history_limit=5)
    delivery.follow(events.ALERTS_TOPIC)
    await publish(store, events.ALERTS_TOPIC, data={"alerts": []})
    await delivery.snapshot(events.ALERTS_TOPIC)
    fresh = MemoryFeedStore(history_length=5)  # the store lost its state: a new epoch
    delivery.reader.store = fresh
    await publish(fresh, events.ALERTS_TOPIC, data={"alerts": [{"id": 1}]})
    (change,) = await publish(fresh, events.ALERTS_TOPIC, message_type=events.ALERT_FIRED, data={"id": 2})
    out = await delivery.deliver(change)
    assert kinds(out) == ["resync", ("frame", 1), ("frame", 2)]
    assert json.loads(out[1].text)["type"] == events.ALERTS_UPDATE, "a full state before the change"


async def test_resume_replays_what_was_missed_and_moves_the_cursor(store, delivery):
    frames = await publish(store, n=4)
    result = await delivery.resume(events.STATUS_TOPIC, since_seq=2, epoch=frames[0].epoch)
    assert (result.outcome, result.replayed) == (REPLAYED, 2)
    assert kinds(result.out) == ["resumed", ("frame", 3), ("frame", 4)]
    assert delivery.cursors[events.STATUS_TOPIC].seq == 4


async def test_resume_from_an_unknown_epoch_is_a_resync_and_the_snapshot(store, delivery):
    await publish(store, n=2)
    result = await delivery.resume(events.STATUS_TOPIC, since_seq=1, epoch="another-epoch")
    assert result.outcome == RESYNCED
    assert kinds(result.out) == ["resync", ("frame", 2)]
    assert json.loads(result.out[0])["data"]["reason"] == "epoch_changed"


async def test_frames_of_a_topic_not_followed_are_not_delivered(store, delivery):
    (frame,) = await publish(store, events.ALERTS_TOPIC, data={"alerts": []})
    assert await delivery.deliver(frame) == [] and not delivery.take_if_next(frame)
    assert delivery.drop(events.STATUS_TOPIC) and not delivery.drop(events.STATUS_TOPIC)
