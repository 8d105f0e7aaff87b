"""The feed store on real Redis: the FeedStore contract, one sequence shared by every process, and a
new epoch at seq 1 once Redis lost the topic (clients then resync)."""

import pytest
import pytest_asyncio
from django.conf import settings

from monitoring.feed.redis_store import RedisFeedStore
from monitoring.feed.registry import redis_client
from monitoring.feed.store import EPOCH_CHANGED
from monitoring.tests.feed.store_contract import LIMIT, FeedStoreContract, alert_fired, alert_list, status

pytestmark = [pytest.mark.redis, pytest.mark.asyncio]


def _store() -> RedisFeedStore:
    return RedisFeedStore(client=redis_client(), prefix=settings.CHANNEL_LAYER_PREFIX, history_length=LIMIT)


@pytest_asyncio.fixture
async def store(redis_feed):
    made = _store()
    yield made
    await made.close()


class TestRedisFeedStore(FeedStoreContract):
    pass


async def test_two_processes_share_one_sequence_and_epoch(store):
    other = _store()
    try:
        first = await store.publish(topic="status", parts=status(1))
        second = await other.publish(topic="status", parts=status(2))
        assert (first.seq, second.seq, second.epoch) == (1, 2, first.epoch)
        assert (await store.since(topic="status", epoch=first.epoch, since_seq=1, limit=LIMIT)).frames == (second,)
    finally:
        await other.close()


async def test_a_topic_lost_by_redis_starts_a_new_epoch_at_seq_1(store):
    old = await store.publish(topic="status", parts=status(1))
    await store.client.delete(*store._keys("status"))
    new = await store.publish(topic="status", parts=status(2))
    assert new.seq == 1 and new.epoch != old.epoch
    history = await store.since(topic="status", epoch=old.epoch, since_seq=old.seq, limit=LIMIT)
    assert history.gap == EPOCH_CHANGED


async def test_the_snapshot_outlives_the_history_it_was_published_in(store):
    full = await store.publish(topic="alerts", parts=alert_list(1))
    await store.publish(topic="alerts", parts=alert_fired(2))
    await store.client.delete(store._keys("alerts")[1])  # the stream only: as if trimmed
    later = await store.publish(topic="alerts", parts=alert_fired(3))
    assert later.seq == 3
    assert await store.snapshot(topic="alerts") == [full]  # not the changes after the hole
