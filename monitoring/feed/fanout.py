"""Process-local fan-out of feed frames.

Each process joins a topic's channel-layer group once, with one channel of its own, however many of
its sockets follow the topic; one task reads that channel and hands every frame straight to the local
subscribers in publish order. A frame therefore costs one Redis delivery per process, and no
per-socket channel, queue or task wake-up (channels' per-consumer dispatch was most of the CPU spent
per delivered frame at thousands of sockets).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Protocol

from channels.layers import BaseChannelLayer, get_channel_layer
from django.conf import settings

from monitoring import telemetry
from monitoring.events import STATUS_TOPIC, group_name
from monitoring.feed.frames import Frame, frame_from_event, stale_reason_from_event
from monitoring.feed.staleness import StatusWatch

logger = logging.getLogger(__name__)

# Re-joining every group this often keeps memberships alive on layers that expire them (the
# in-memory layer's group_expiry is a day).
REJOIN_EVERY = 3600.0
_ABSENT = object()


class Subscriber(Protocol):
    async def offer(self, frame: Frame) -> None:
        """Take the next frame of a topic it joined; must not wait on I/O."""

    async def notice(self, text: str) -> None:
        """Take a direct message for the followers of the status (``status_stale``); must not wait on I/O."""


class Fanout:
    def __init__(self, layer: BaseChannelLayer) -> None:
        self.layer = layer
        self.members: dict[str, dict[Subscriber, None]] = {}
        self.channel: str | None = None
        self._reader: asyncio.Task | None = None
        self._rejoin: asyncio.Task | None = None
        self._lock = asyncio.Lock()
        self.status_watch = StatusWatch(
            stale_after=settings.WEBSOCKET_STALE_AFTER,
            repeat_every=settings.WEBSOCKET_BROADCAST_INTERVAL,
            notify=self._tell_status_followers,
        )

    async def join(self, topic: str, member: Subscriber) -> None:
        """Frames of ``topic`` published from now on reach ``member``. Raises when the layer is down."""
        members = self.members.get(topic)
        if members is None:
            async with self._lock:
                members = self.members.get(topic)
                if members is None:
                    await self.layer.group_add(group_name(topic), await self._channel())
                    members = self.members[topic] = {}
                    if topic == STATUS_TOPIC:
                        self.status_watch.start()
        members[member] = None

    async def leave(self, member: Subscriber, *topics: str) -> None:
        """Stop offering ``member`` the frames of ``topics``. Never raises.

        The member is detached from every topic before the first await, so a leave cancelled midway
        (a server timing out a closing socket) never leaves it registered anywhere.
        """
        emptied = []
        for topic in topics:
            members = self.members.get(topic)
            if members is not None and members.pop(member, _ABSENT) is not _ABSENT and not members:
                emptied.append(topic)
        for topic in emptied:
            async with self._lock:
                if self.members.get(topic) != {}:
                    continue  # a join came in meanwhile
                del self.members[topic]
                if topic == STATUS_TOPIC:
                    self.status_watch.stop()
                try:
                    await self.layer.group_discard(group_name(topic), self.channel)
                except Exception:
                    logger.warning("could not leave the group of %s", topic, exc_info=True)

    def close(self) -> None:
        self.status_watch.stop()
        for task in (self._reader, self._rejoin):
            if task is not None:
                task.cancel()

    def status_notice(self) -> str | None:
        """The ``status_stale`` frame for a socket that starts following the status now, if it is stale."""
        return self.status_watch.notice()

    async def _tell_status_followers(self, text: str) -> None:
        for member in list(self.members.get(STATUS_TOPIC, ())):
            if self.status_watch.reason is None:
                return  # a status frame arrived meanwhile: the notice would now be false
            try:
                await member.notice(text)
            except Exception:
                logger.exception("a feed subscriber failed to take a stale notice")

    async def _channel(self) -> str:
        if self.channel is None:
            self.channel = await self.layer.new_channel()
            self._reader = asyncio.ensure_future(self._read())
            self._rejoin = asyncio.ensure_future(self._rejoin_periodically())
        return self.channel

    async def _read(self) -> None:
        while True:
            try:
                event = await self.layer.receive(self.channel)
                frame = frame_from_event(event)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("feed fan-out could not read its channel; retrying in 1 s", exc_info=True)
                await asyncio.sleep(1)
                continue
            if frame is None:
                reason = stale_reason_from_event(event)
                if reason is not None:
                    self.status_watch.report(reason)
                continue
            if frame.topic == STATUS_TOPIC:
                self.status_watch.fresh(frame)
            members = list(self.members.get(frame.topic, ()))
            for member in members:
                try:
                    await member.offer(frame)
                except Exception:
                    logger.exception("a feed subscriber failed to take frame %s of %s", frame.seq, frame.topic)
            published_at = event.get("published_at")
            if members and isinstance(published_at, float):
                telemetry.FEED_DELIVERY_SECONDS.observe(max(0.0, time.time() - published_at))

    async def _rejoin_periodically(self) -> None:
        while True:
            await asyncio.sleep(REJOIN_EVERY)
            for topic in list(self.members):
                async with self._lock:
                    if not self.members.get(topic):
                        continue  # left since the list was taken
                    try:
                        await self.layer.group_add(group_name(topic), self.channel)
                    except Exception:
                        logger.warning("could not renew the fan-out's membership of %s", topic, exc_info=True)


_per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Fanout] = weakref.WeakKeyDictionary()


def get_fanout() -> Fanout:
    """This event loop's fan-out on the current channel layer (a settings change brings a new one)."""
    loop = asyncio.get_running_loop()
    layer = get_channel_layer()
    fanout = _per_loop.get(loop)
    if fanout is None or fanout.layer is not layer:
        if fanout is not None:
            fanout.close()
        fanout = _per_loop[loop] = Fanout(layer)
    return fanout
