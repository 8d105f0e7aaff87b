"""Publishing to the live feed. The only code that calls ``group_send``.

A publish assigns the frame its seq (in the feed store, shared by all processes), then sends the
already-serialised frame to the topic's group, so consumers forward text without re-encoding it.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import transaction

from monitoring.events import (
    ALERT_CHANGE_TYPES,
    ALERTS_TOPIC,
    STATUS_TOPIC,
    group_name,
    source_topic,
    topic_frame_parts,
)
from monitoring.feed.frames import Frame, frame_event, stale_event, status_dirty_event
from monitoring.feed.registry import get_store
from monitoring.feed.store import History
from monitoring.selectors import active_alerts, alert_dict, per_source_status, pipeline_status

logger = logging.getLogger(__name__)

# Named channel the active broadcaster listens on for "status changed, push soon" hints.
BROADCASTER_CHANNEL = "monitoring.broadcaster"


async def publish(*, topic: str, data: dict[str, Any], message_type: str | None = None) -> Frame:
    parts = topic_frame_parts(topic=topic, data=data, message_type=message_type)
    frame = await get_store().publish(topic=topic, parts=parts)
    await get_channel_layer().group_send(group_name(topic), frame_event(frame))
    return frame


async def publish_status(*, document: dict[str, Any], previous: dict[str, str] | None = None) -> dict[str, str]:
    """Publish the status document, plus the alerts and per-source topics whose content changed.

    ``previous`` maps topic -> JSON of what was last published on it; the returned map is the new one.
    The status topic is published every time: its frames are the feed's heartbeat.
    """
    previous = previous or {}
    published: dict[str, str] = {}
    await publish(topic=STATUS_TOPIC, data=document)
    derived = {ALERTS_TOPIC: {"alerts": document["alerts"]}}
    derived.update({source_topic(name): detail for name, detail in per_source_status(document).items()})
    for topic, data in derived.items():
        fingerprint = repr(sorted(data.items()))
        published[topic] = fingerprint
        if previous.get(topic) != fingerprint:
            await publish(topic=topic, data=data)
    return published


async def publish_status_unavailable(*, reason: str) -> None:
    """Tell every server that the status could not be computed (``reason``, one of
    ``events.STALE_REASONS``), so their clients mark it stale at once. Never raises: Redis may be away too."""
    try:
        await get_channel_layer().group_send(group_name(STATUS_TOPIC), stale_event(reason=reason))
    except Exception:
        logger.warning("could not report the status as unavailable", exc_info=True)


async def publish_alert_changes(*, changes: list, with_list: bool = True) -> None:
    """Each change as its own message on the alerts topic, then (``with_list``) the active alerts.

    The list makes the topic's latest frame a full snapshot again; the broadcaster leaves it to
    ``publish_status``, which publishes it whenever it changed.
    """
    if not changes:
        return
    for change in changes:
        data = await database_sync_to_async(alert_dict)(change.alert)
        await publish(topic=ALERTS_TOPIC, data=data, message_type=ALERT_CHANGE_TYPES[change.kind])
    if with_list:
        await publish(topic=ALERTS_TOPIC, data={"alerts": await database_sync_to_async(active_alerts)()})


def publish_alert_changes_sync(*, changes: list) -> None:
    """For request handlers (after their transaction commits). Never raises: the change is already stored."""
    try:
        async_to_sync(publish_alert_changes)(changes=changes)
    except Exception:
        logger.warning("could not push alert changes; the next broadcaster tick carries the alert list", exc_info=True)


async def latest_frame(*, topic: str) -> Frame | None:
    return await get_store().latest(topic=topic)


class FeedReader:
    """What a connection reads (``feed.delivery.Reader``, ``feed.requests.Source``): the store's history
    and latest frame, and the snapshots, which publish the first status when nothing was published yet."""

    async def since(self, *, topic: str, epoch: str, since_seq: int, limit: int) -> History:
        return await get_store().since(topic=topic, epoch=epoch, since_seq=since_seq, limit=limit)

    async def snapshot(self, *, topic: str) -> list[Frame]:
        return await snapshot_frames(topic=topic)

    async def latest(self, *, topic: str) -> Frame | None:
        return await latest_frame(topic=topic)

    async def status_frame(self) -> Frame:
        return await ensure_status_frame()


# Stateless: one reader serves every connection of the process.
READER = FeedReader()


async def snapshot_frames(*, topic: str) -> list[Frame]:
    """The topic's latest full-state frame, then the frames published after it (``[]``: nothing yet).

    With nothing published yet (fresh Redis, no broadcaster tick so far), the status is published
    first, and with it the alerts and per-source topics (see :func:`ensure_status_frame`).
    """
    frames = await get_store().snapshot(topic=topic)
    if not frames:
        await ensure_status_frame()
        frames = await get_store().snapshot(topic=topic)
    return frames


_first_publish_locks: dict[int, asyncio.Lock] = {}


async def ensure_status_frame() -> Frame:
    """The latest status frame; when none exists yet (fresh Redis, no broadcaster tick so far), publish one.

    One computation per process at a time, so a reconnect storm into an empty history costs one query.
    """
    frame = await latest_frame(topic=STATUS_TOPIC)
    if frame is not None:
        return frame
    lock = _first_publish_locks.setdefault(id(asyncio.get_running_loop()), asyncio.Lock())
    async with lock:
        frame = await latest_frame(topic=STATUS_TOPIC)
        if frame is None:
            document = await database_sync_to_async(pipeline_status)()
            await publish_status(document=document)
            frame = await latest_frame(topic=STATUS_TOPIC)
    return frame


# An in-memory channel layer only reaches this process: hints are pointless without a broadcaster here.
_in_process_broadcaster = False


def mark_in_process_broadcaster(running: bool) -> None:
    global _in_process_broadcaster
    _in_process_broadcaster = running


def request_status_push(*, reason: str) -> None:
    """Ask the active broadcaster for an early status push. Never raises: ingest must not fail on it."""
    layer = get_channel_layer()
    if isinstance(layer, InMemoryChannelLayer) and not _in_process_broadcaster:
        return
    try:
        async_to_sync(layer.send)(BROADCASTER_CHANNEL, status_dirty_event(reason=reason))
    except Exception:
        logger.warning("could not request a status push (%s); the next broadcaster tick carries it", reason)


def request_status_push_on_commit(*, reason: str) -> None:
    """Call inside the writing transaction: the hint goes out only if, and after, it commits."""
    transaction.on_commit(partial(request_status_push, reason=reason))
