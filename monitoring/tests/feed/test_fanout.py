"""The process-local fan-out: one channel-layer membership per topic per process, frames handed to
every local subscriber in publish order, on the in-memory layer and on real Redis."""

from __future__ import annotations

import asyncio

import pytest

from monitoring import telemetry
from monitoring.events import group_name
from monitoring.feed import fanout as fanout_module
from monitoring.feed.fanout import get_fanout
from monitoring.feed.frames import Frame
from monitoring.services.feed import publish

pytestmark = [pytest.mark.asyncio, pytest.mark.usefixtures("feed_backend")]


class Recorder:
    def __init__(self, *, fail: bool = False) -> None:
        self.frames: list[Frame] = []
        self.fail = fail

    async def offer(self, frame: Frame) -> None:
        if self.fail:
            raise RuntimeError("a broken subscriber")
        self.frames.append(frame)


async def until(predicate, timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def layer_members(fanout, topic: str) -> set[str]:
    """The channels the layer itself delivers ``topic`` to in this process."""
    layer = fanout.layer
    if hasattr(layer, "_get_layer"):  # the pub/sub layer keeps one layer per event loop
        inner = layer._get_layer()
        return set(inner.groups.get(inner._get_group_channel_name(group_name(topic)), set()))
    return set(layer.groups.get(group_name(topic), {}))


async def test_many_subscribers_of_a_topic_cost_one_layer_membership():
    fanout = get_fanout()
    subscribers = [Recorder() for _ in range(50)]
    for subscriber in subscribers:
        await fanout.join("status", subscriber)
    assert layer_members(fanout, "status") == {fanout.channel}
    published = [await publish(topic="status", data={"n": n}) for n in range(3)]
    await until(lambda: all(len(s.frames) == 3 for s in subscribers))
    assert all(s.frames == published for s in subscribers)
    for subscriber in subscribers:
        await fanout.leave(subscriber, "status")


async def test_frames_reach_only_the_subscribers_of_their_topic():
    fanout = get_fanout()
    status, source = Recorder(), Recorder()
    await fanout.join("status", status)
    await fanout.join("source:acled", source)
    await publish(topic="source:acled", data={"n": 1})
    await publish(topic="status", data={"n": 2})
    await until(lambda: status.frames and source.frames)
    assert [f.topic for f in status.frames] == ["status"]
    assert [f.topic for f in source.frames] == ["source:acled"]
    await fanout.leave(status, "status")
    await fanout.leave(source, "source:acled")


def delivery_count() -> float:
    (family,) = telemetry.FEED_DELIVERY_SECONDS.collect()
    return next(sample.value for sample in family.samples if sample.name.endswith("_count"))


async def test_each_delivered_frame_is_timed_once_per_process_from_its_publish():
    fanout = get_fanout()
    members = [Recorder() for _ in range(3)]
    for member in members:
        await fanout.join("status", member)
    before = delivery_count()
    await publish(topic="status", data={"n": 1})
    await publish(topic="status", data={"n": 2})
    await until(lambda: all(len(m.frames) == 2 for m in members))
    assert delivery_count() - before == 2  # one observation per frame, not per socket
    for member in members:
        await fanout.leave(member, "status")


async def test_a_failing_subscriber_does_not_stop_delivery_to_the_others():
    fanout = get_fanout()
    broken, healthy = Recorder(fail=True), Recorder()
    await fanout.join("status", broken)
    await fanout.join("status", healthy)
    await publish(topic="status", data={"n": 1})
    await publish(topic="status", data={"n": 2})
    await until(lambda: len(healthy.frames) == 2)
    await fanout.leave(broken, "status")
    await fanout.leave(healthy, "status")


async def test_the_last_leave_drops_the_membership_and_a_new_join_restores_it():
    fanout = get_fanout()
    first, second = Recorder(), Recorder()
    await fanout.join("alerts", first)
    await fanout.leave(first, "alerts")
    assert layer_members(fanout, "alerts") == set()
    assert "alerts" not in fanout.members
    await publish(topic="alerts", data={"alerts": []})
    await fanout.join("alerts", second)
    frame = await publish(topic="alerts", data={"alerts": [1]})
    await until(lambda: second.frames)
    assert second.frames == [frame] and first.frames == []
    await fanout.leave(second, "alerts")


async def test_leaving_a_topic_never_joined_is_harmless():
    fanout = get_fanout()
    await fanout.leave(Recorder(), "status")
    assert fanout.members == {}


async def test_a_membership_the_layer_lost_is_renewed(monkeypatch):
    """Layers that expire group members (the in-memory one after a day) get the membership again."""
    monkeypatch.setattr(fanout_module, "REJOIN_EVERY", 0.05)
    fanout = get_fanout()
    subscriber = Recorder()
    await fanout.join("status", subscriber)
    await fanout.layer.group_discard(group_name("status"), fanout.channel)
    await until(lambda: layer_members(fanout, "status") == {fanout.channel})
    frame = await publish(topic="status", data={"n": 1})
    await until(lambda: subscriber.frames)
    assert subscriber.frames == [frame]
    await fanout.leave(subscriber, "status")


async def test_a_cancelled_leave_still_detaches_the_member_from_every_topic(monkeypatch):
    """A server that cancels a closing socket mid-leave must not leave it registered anywhere."""
    fanout = get_fanout()
    subscriber = Recorder()
    for topic in ("status", "alerts", "source:acled"):
        await fanout.join(topic, subscriber)
    entered = asyncio.Event()

    async def stuck_discard(group, channel):
        entered.set()
        await asyncio.sleep(3600)

    monkeypatch.setattr(fanout.layer, "group_discard", stuck_discard, raising=False)
    leaving = asyncio.ensure_future(fanout.leave(subscriber, "status", "alerts", "source:acled"))
    await asyncio.wait_for(entered.wait(), timeout=3)
    leaving.cancel()
    assert all(subscriber not in members for members in fanout.members.values())


async def test_a_failing_group_discard_is_logged_and_the_member_is_gone(monkeypatch, caplog):
    fanout = get_fanout()
    subscriber = Recorder()
    await fanout.join("status", subscriber)

    async def layer_down(group, channel):
        raise ConnectionError("channel layer unreachable")

    monkeypatch.setattr(fanout.layer, "group_discard", layer_down, raising=False)
    await fanout.leave(subscriber, "status")
    assert "status" not in fanout.members
    assert "could not leave the group of status" in caplog.text
