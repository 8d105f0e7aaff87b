"""A connection's answers to client requests (ping, subscribe, unsubscribe, get_status, get_alerts,
resume): which topics it follows, and what each request sends. No socket: the consumer passes its
``send`` and ``refuse`` and its fan-out membership (``member``: what the fan-out hands frames to)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from monitoring import events, protocol, telemetry
from monitoring.feed.delivery import Delivery, Out
from monitoring.feed.frames import Frame
from monitoring.feed.guard import Refusal


class Source(Protocol):
    """What requests read besides history: the latest status frame (published first if none yet) and
    the topic snapshots."""

    async def status_frame(self) -> Frame: ...

    async def snapshot(self, *, topic: str) -> list[Frame]: ...


class Requests:
    # One per open socket: slots keep thousands of them small (no per-instance dict).
    __slots__ = ("delivery", "source", "fanout", "member", "send", "refuse", "max_topics")

    def __init__(
        self,
        *,
        delivery: Delivery,
        source: Source,
        fanout: Any,
        member: Any,
        send: Callable[[Out], Awaitable[None]],
        refuse: Callable[[Refusal], Awaitable[None]],
        max_topics: int,
    ) -> None:
        self.delivery = delivery
        self.source = source
        self.fanout = fanout
        self.member = member
        self.send = send
        self.refuse = refuse
        self.max_topics = max_topics

    async def handle(self, message: protocol.ClientRequest) -> None:
        epoch = self.delivery.epoch()
        if isinstance(message, protocol.Ping):
            await self.send(events.pong(epoch=epoch, echo=message.echo))
        elif isinstance(message, protocol.Subscribe):
            await self.subscribe(message.topic, resume=None, reply=True)
        elif isinstance(message, protocol.Unsubscribe):
            if self.delivery.drop(message.topic):
                await self.fanout.leave(self.member, message.topic)
            await self.send(events.unsubscribed(epoch=epoch, topic=message.topic, topics=self.delivery.topics()))
        elif isinstance(message, protocol.GetStatus):
            await self.send((await self.source.status_frame()).text)
            await self.stale_notice()
        elif isinstance(message, protocol.GetAlerts):
            # The latest full-state frame (``alerts_update``), never a single alert change.
            frames = await self.source.snapshot(topic=events.ALERTS_TOPIC)
            await self.send(
                frames[0].text
                if frames
                else events.error(epoch=epoch, code=events.UNAVAILABLE, message="Nothing published on alerts yet.")
            )
        elif isinstance(message, protocol.Resume):
            if message.topic not in self.delivery.cursors:
                await self.refuse(Refusal(events.UNKNOWN_TOPIC, f"Not subscribed to {message.topic!r}.", "resume"))
                return
            await self.resume(message.topic, since_seq=message.since_seq, epoch=message.epoch)

    async def subscribe(self, topic: str, *, resume: tuple[int, str] | None, reply: bool) -> None:
        if topic not in self.delivery.cursors:
            if len(self.delivery.cursors) >= self.max_topics:
                await self.refuse(Refusal(events.INVALID_MESSAGE, "Too many topics on one connection.", "subscribe"))
                return
            await self.fanout.join(topic, self.member)
            self.delivery.follow(topic)
        if reply:
            await self.send(events.subscribed(epoch=self.delivery.epoch(), topic=topic, topics=self.delivery.topics()))
        if resume is not None:
            await self.resume(topic, since_seq=resume[0], epoch=resume[1])
        else:
            for item in await self.delivery.snapshot(topic):
                await self.send(item)
        if topic == events.STATUS_TOPIC:
            await self.stale_notice()

    async def resume(self, topic: str, *, since_seq: int, epoch: str) -> None:
        result = await self.delivery.resume(topic, since_seq=since_seq, epoch=epoch)
        telemetry.WS_RESUMES.labels(outcome=result.outcome).inc()
        for item in result.out:
            await self.send(item)

    async def stale_notice(self) -> None:
        """After the status a client starts from: whether that status is current (see feed.staleness)."""
        text = self.fanout.status_notice()
        if text is not None:
            await self.send(text)
