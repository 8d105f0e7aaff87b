"""A connection's answers to client requests, without a socket: topics followed, replies sent."""

import json

import pytest

from monitoring import events, protocol
from monitoring.feed.delivery import Delivery
from monitoring.feed.frames import Frame
from monitoring.feed.memory_store import MemoryFeedStore
from monitoring.feed.requests import Requests
from monitoring.tests.feed.readers import StoreReader

pytestmark = pytest.mark.asyncio


class Fanout:
    def __init__(self) -> None:
        self.joined: list[str] = []
        self.notice = None

    async def join(self, topic, member):
        self.joined.append(topic)

    async def leave(self, member, *topics):
        for topic in topics:
            self.joined.remove(topic)

    def status_notice(self):
        return self.notice


async def _requests(max_topics=3):
    store = MemoryFeedStore(history_length=10)
    await store.publish(topic=events.STATUS_TOPIC, parts=events.topic_frame_parts(topic="status", data={}))
    sent, refused = [], []

    async def send(item):
        sent.append(item)

    async def refuse(refusal):
        refused.append(refusal.code)

    source, fanout = StoreReader(store), Fanout()
    requests = Requests(
        delivery=Delivery(reader=source, history_limit=10),
        source=source,
        fanout=fanout,
        member=object(),
        send=send,
        refuse=refuse,
        max_topics=max_topics,
    )
    return requests, fanout, sent, refused


def _types(sent):
    return [item.seq if isinstance(item, Frame) else json.loads(item)["type"] for item in sent]


async def test_subscribing_joins_the_topic_replies_and_sends_its_snapshot_then_the_stale_notice():
    requests, fanout, sent, _ = await _requests()
    fanout.notice = events.status_stale(epoch="e", reason="no_update", last_seq=1, age_seconds=9, stale_after=6.5)
    await requests.handle(protocol.Subscribe(topic=events.STATUS_TOPIC))
    assert fanout.joined == [events.STATUS_TOPIC]
    assert _types(sent) == ["subscribed", 1, "status_stale"]


async def test_more_topics_than_allowed_are_refused():
    requests, fanout, _, refused = await _requests(max_topics=1)
    await requests.handle(protocol.Subscribe(topic="status"))
    await requests.handle(protocol.Subscribe(topic="alerts"))
    assert fanout.joined == ["status"] and refused == [events.INVALID_MESSAGE]


async def test_resuming_a_topic_not_followed_is_refused_and_unsubscribing_leaves():
    requests, fanout, sent, refused = await _requests()
    await requests.handle(protocol.Resume(topic="alerts", since_seq=1, epoch="e"))
    assert refused == [events.UNKNOWN_TOPIC]
    await requests.handle(protocol.Subscribe(topic="alerts"))
    await requests.handle(protocol.Unsubscribe(topic="alerts"))
    assert fanout.joined == [] and _types(sent)[-1] == "unsubscribed"


async def test_get_alerts_before_anything_was_published_is_an_unavailable_error_and_ping_echoes():
    requests, _, sent, _ = await _requests()
    await requests.handle(protocol.GetAlerts())
    await requests.handle(protocol.Ping(echo="abc"))
    error, pong = (json.loads(item) for item in sent)
    assert error["data"]["code"] == events.UNAVAILABLE
    assert pong["data"] == {"echo": "abc"}
