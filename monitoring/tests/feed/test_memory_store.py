"""The single-process feed store: the FeedStore contract, and a bounded history whose trimming never
loses the latest full-state frame."""

import pytest

from monitoring.feed.memory_store import MemoryFeedStore
from monitoring.feed.store import HISTORY_TRIMMED
from monitoring.tests.feed.store_contract import LIMIT, FeedStoreContract, alert_fired, alert_list, status

pytestmark = pytest.mark.asyncio


@pytest.fixture
def store():
    return MemoryFeedStore(history_length=LIMIT)


class TestMemoryFeedStore(FeedStoreContract):
    pass


async def test_frames_older_than_the_history_length_are_history_trimmed():
    store = MemoryFeedStore(history_length=3)
    frames = [await store.publish(topic="status", parts=status(n)) for n in range(5)]
    epoch = frames[0].epoch
    assert (await store.since(topic="status", epoch=epoch, since_seq=1, limit=LIMIT)).gap == HISTORY_TRIMMED
    assert (await store.since(topic="status", epoch=epoch, since_seq=2, limit=LIMIT)).frames == tuple(frames[2:])


async def test_a_snapshot_trimmed_out_of_the_history_is_kept_without_the_broken_run_after_it():
    store = MemoryFeedStore(history_length=2)
    full = await store.publish(topic="alerts", parts=alert_list(1))
    for alert_id in (2, 3, 4):
        await store.publish(topic="alerts", parts=alert_fired(alert_id))
    assert await store.snapshot(topic="alerts") == [full]


async def test_each_store_starts_its_own_epoch():
    one, two = MemoryFeedStore(history_length=5), MemoryFeedStore(history_length=5)
    first = await one.publish(topic="status", parts=status(1))
    second = await two.publish(topic="status", parts=status(1))
    assert first.seq == second.seq == 1
    assert first.epoch != second.epoch
