"""Every channel-layer event (between processes, not to clients): built and recognised here only."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

# The channel-layer event that carries a published frame to every process with subscribers.
FRAME_EVENT = "feed.frame"
# The event by which the broadcaster tells every process that it could not produce a status.
STALE_EVENT = "feed.stale"
# Sent to the broadcaster's channel: the status changed, push it early.
STATUS_DIRTY_EVENT = "status.dirty"
# The readiness probe's round trip through the channel layer.
READY_PING_EVENT = "ready.ping"


@dataclass(frozen=True)
class Frame:
    """A published topic frame: ``text`` is exactly what every client receives."""

    topic: str
    seq: int
    epoch: str
    text: str


def frame_event(frame: Frame) -> dict[str, Any]:
    """The event that carries ``frame``, stamped with its publish time (wall clock, for the delivery
    histogram of each receiving process)."""
    return {
        "type": FRAME_EVENT,
        "topic": frame.topic,
        "seq": frame.seq,
        "epoch": frame.epoch,
        "frame": frame.text,
        "published_at": time.time(),
    }


def frame_from_event(event: dict[str, Any]) -> Frame | None:
    """The frame a channel-layer event carries, or ``None`` for any other event."""
    if event.get("type") != FRAME_EVENT:
        return None
    return Frame(event["topic"], event["seq"], event["epoch"], event["frame"])


def stale_event(*, reason: str) -> dict[str, Any]:
    return {"type": STALE_EVENT, "reason": reason}


def stale_reason_from_event(event: dict[str, Any]) -> str | None:
    """The reason a stale event carries, or ``None`` for any other event."""
    if event.get("type") != STALE_EVENT:
        return None
    reason = event.get("reason")
    return reason if isinstance(reason, str) else None


def status_dirty_event(*, reason: str) -> dict[str, Any]:
    return {"type": STATUS_DIRTY_EVENT, "reason": reason}


def is_status_dirty(event: dict[str, Any]) -> bool:
    return event.get("type") == STATUS_DIRTY_EVENT


def ready_ping_event() -> dict[str, Any]:
    return {"type": READY_PING_EVENT}


def is_ready_ping(event: dict[str, Any]) -> bool:
    return event.get("type") == READY_PING_EVENT
