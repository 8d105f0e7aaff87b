"""The FeedStore contract (``monitoring.feed.store``), run against each backend: ``test_memory_store``
and ``test_redis_store`` subclass :class:`FeedStoreContract` and give it a ``store`` fixture."""

from __future__ import annotations

from monitoring import events
from monitoring.feed.store import EPOCH_CHANGED, FUTURE_SEQ, HISTORY_TRIMMED

LIMIT = 100


def status(n: int) -> events.TopicFrameParts:
    return events.topic_frame_parts(topic=events.STATUS_TOPIC, data={"n": n})


def alert_list(*ids: int) -> events.TopicFrameParts:
    return events.topic_frame_parts(topic=events.ALERTS_TOPIC, data={"alerts": [{"id": i} for i in ids]})


def alert_fired(alert_id: int) -> events.TopicFrameParts:
    return events.topic_frame_parts(topic=events.ALERTS_TOPIC, data={"id": alert_id}, message_type=events.ALERT_FIRED)


class FeedStoreContract:
    async def test_publish_assigns_seq_1_2_3_in_one_epoch_per_topic(self, store):
        frames = [await store.publish(topic="status", parts=status(n)) for n in range(3)]
        assert [frame.seq for frame in frames] == [1, 2, 3]
        assert len({frame.epoch for frame in frames}) == 1
        other = await store.publish(topic="source:gdelt", parts=status(9))
        assert other.seq == 1 and other.epoch != frames[0].epoch

    async def test_the_frame_text_is_the_one_serialised_form_with_its_seq_and_epoch(self, store):
        parts = status(1)
        frame = await store.publish(topic="status", parts=parts)
        assert frame.text == events.join_topic_frame(parts, seq=frame.seq, epoch=frame.epoch)
        assert (frame.topic, frame.seq) == ("status", 1)

    async def test_latest_is_the_last_frame_published_and_none_before_any(self, store):
        assert await store.latest(topic="status") is None
        await store.publish(topic="status", parts=status(1))
        last = await store.publish(topic="status", parts=status(2))
        assert await store.latest(topic="status") == last

    async def test_since_answers_the_frames_after_a_seq_in_order(self, store):
        frames = [await store.publish(topic="status", parts=status(n)) for n in range(4)]
        history = await store.since(topic="status", epoch=frames[0].epoch, since_seq=1, limit=LIMIT)
        assert history.gap is None
        assert history.frames == tuple(frames[1:])
        assert history.fills(1)

    async def test_since_the_latest_seq_is_no_frames_and_no_gap(self, store):
        frame = await store.publish(topic="status", parts=status(1))
        history = await store.since(topic="status", epoch=frame.epoch, since_seq=frame.seq, limit=LIMIT)
        assert (history.frames, history.gap) == ((), None)
        assert not history.fills(frame.seq)

    async def test_since_another_epoch_or_an_unknown_topic_is_epoch_changed(self, store):
        frame = await store.publish(topic="status", parts=status(1))
        assert (await store.since(topic="status", epoch="0" * 16, since_seq=0, limit=LIMIT)).gap == EPOCH_CHANGED
        unknown = await store.since(topic="source:none", epoch=frame.epoch, since_seq=0, limit=LIMIT)
        assert unknown.gap == EPOCH_CHANGED

    async def test_since_a_seq_not_published_yet_is_future_seq(self, store):
        frame = await store.publish(topic="status", parts=status(1))
        history = await store.since(topic="status", epoch=frame.epoch, since_seq=2, limit=LIMIT)
        assert (history.frames, history.gap) == ((), FUTURE_SEQ)

    async def test_since_further_back_than_the_limit_is_history_trimmed(self, store):
        frames = [await store.publish(topic="status", parts=status(n)) for n in range(5)]
        history = await store.since(topic="status", epoch=frames[0].epoch, since_seq=1, limit=3)
        assert (history.frames, history.gap) == ((), HISTORY_TRIMMED)
        assert not history.fills(1)
        within = await store.since(topic="status", epoch=frames[0].epoch, since_seq=2, limit=3)
        assert within.frames == tuple(frames[2:])

    async def test_snapshot_is_empty_until_a_full_state_frame_is_published(self, store):
        assert await store.snapshot(topic="alerts") == []
        await store.publish(topic="alerts", parts=alert_fired(1))
        assert await store.snapshot(topic="alerts") == []

    async def test_snapshot_keeps_the_latest_full_list_apart_then_the_changes_after_it(self, store):
        await store.publish(topic="alerts", parts=alert_list(1))
        full = await store.publish(topic="alerts", parts=alert_list(1, 2))
        fired = await store.publish(topic="alerts", parts=alert_fired(3))
        again = await store.publish(topic="alerts", parts=alert_fired(4))
        assert await store.snapshot(topic="alerts") == [full, fired, again]
        assert (await store.latest(topic="alerts")) == again

    async def test_the_snapshot_of_a_status_topic_is_its_latest_frame(self, store):
        await store.publish(topic="status", parts=status(1))
        last = await store.publish(topic="status", parts=status(2))
        assert await store.snapshot(topic="status") == [last]
