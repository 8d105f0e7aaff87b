"""What one connection is sent, and in what order: the live feed's delivery engine.

Transport-free (no socket, no Django): the consumer hands it frames and client requests and sends what
it returns. Per followed topic a :class:`Cursor` holds the epoch and seq last delivered; frames go out
in seq order, a gap is filled from the store's history, and when history cannot fill it (the epoch
changed, it was trimmed, the store is away) the client is told to resync and restarts from a snapshot.
Resuming after a reconnect replays from history the same way.

The engine reads through :class:`Reader` (the store's history plus the snapshot source); it returns
``Out`` items: a :class:`Frame` (a topic frame, which moved the cursor) or a ``str`` (a direct reply,
such as ``resync``, built by ``monitoring.events``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from monitoring import events
from monitoring.feed.frames import Frame
from monitoring.feed.store import HISTORY_TRIMMED, HISTORY_UNAVAILABLE, History

logger = logging.getLogger(__name__)
Out = Frame | str

REPLAYED = "replayed"
RESYNCED = "resync"


class Reader(Protocol):
    async def since(self, *, topic: str, epoch: str, since_seq: int, limit: int) -> History: ...

    async def snapshot(self, *, topic: str) -> list[Frame]: ...

    async def latest(self, *, topic: str) -> Frame | None: ...


@dataclass(slots=True)
class Cursor:
    """The last frame of a topic this connection was given (no epoch: nothing yet)."""

    epoch: str | None = None
    seq: int = 0

    def follows(self, frame: Frame) -> bool:
        return self.epoch == frame.epoch and frame.seq == self.seq + 1


@dataclass(frozen=True)
class Resume:
    out: list[Out]
    outcome: str  # REPLAYED or RESYNCED
    replayed: int


class Delivery:
    # One per open socket: slots keep thousands of them small (no per-instance dict).
    __slots__ = ("reader", "history_limit", "cursors")

    def __init__(self, *, reader: Reader, history_limit: int) -> None:
        self.reader = reader
        self.history_limit = history_limit
        self.cursors: dict[str, Cursor] = {}

    # --- topics -----------------------------------------------------------------------------
    def follow(self, topic: str) -> None:
        self.cursors.setdefault(topic, Cursor())

    def drop(self, topic: str) -> bool:
        return self.cursors.pop(topic, None) is not None

    def topics(self) -> list[str]:
        return sorted(self.cursors)

    def epoch(self) -> str:
        """The epoch direct replies carry: the status topic's, once it has one."""
        cursor = self.cursors.get(events.STATUS_TOPIC)
        return (cursor.epoch or "") if cursor else ""

    # --- frames -----------------------------------------------------------------------------
    def take_if_next(self, frame: Frame) -> bool:
        """The fast path: ``frame`` is the next one of a followed topic; the cursor moves to it."""
        cursor = self.cursors.get(frame.topic)
        if cursor is None or not cursor.follows(frame):
            return False
        cursor.epoch, cursor.seq = frame.epoch, frame.seq
        return True

    async def deliver(self, frame: Frame) -> list[Out]:
        """Everything to send for ``frame``: nothing (already delivered), the frame, the missed frames
        and the frame, or a resync and a restart."""
        cursor = self.cursors.get(frame.topic)
        out: list[Out] = []
        if cursor is None:
            return out
        if cursor.epoch != frame.epoch:
            if cursor.epoch is not None:
                out.append(
                    events.resync(epoch=frame.epoch, topic=frame.topic, reason="epoch_changed", latest_seq=frame.seq)
                )
            await self._restart(frame, cursor, out)
            return out
        if frame.seq <= cursor.seq:
            return out  # already delivered (a gap fill or snapshot got there first)
        if frame.seq == cursor.seq + 1:
            _give(cursor, frame, out)
            return out
        history = await self._history(topic=frame.topic, epoch=cursor.epoch, since_seq=cursor.seq)
        if history.fills(cursor.seq):
            for old in history.frames:
                _give(cursor, old, out)
            if cursor.seq < frame.seq:
                _give(cursor, frame, out)
            return out
        reason = history.gap or HISTORY_TRIMMED
        out.append(events.resync(epoch=frame.epoch, topic=frame.topic, reason=reason, latest_seq=frame.seq))
        await self._restart(frame, cursor, out)
        return out

    async def _history(self, *, topic: str, epoch: str, since_seq: int) -> History:
        try:
            return await self.reader.since(topic=topic, epoch=epoch, since_seq=since_seq, limit=self.history_limit)
        except Exception:
            logger.warning("history unavailable for a gap on %s; resyncing the client", topic, exc_info=True)
            return History.missing(HISTORY_UNAVAILABLE)

    async def _restart(self, frame: Frame, cursor: Cursor, out: list[Out]) -> None:
        """Start the topic over at ``frame``. A frame that is not a full state (an alert change) is
        preceded by the topic's snapshot and what followed it, so the client never builds on a part."""
        if events.frames_are_snapshots(frame.topic):
            _give(cursor, frame, out)
            return
        cursor.epoch, cursor.seq = None, 0
        try:
            out.extend(await self.snapshot(frame.topic))
        except Exception:
            logger.warning("no snapshot of %s for a restart; forwarding the frame alone", frame.topic, exc_info=True)
        # No snapshot yet (a new epoch that began with a change): the frame starts the topic's history.
        if cursor.epoch is None or (cursor.epoch == frame.epoch and cursor.seq == frame.seq - 1):
            _give(cursor, frame, out)

    # --- requests ---------------------------------------------------------------------------
    async def snapshot(self, topic: str) -> list[Out]:
        """The topic's latest full state, then the changes published after it, skipping what was given."""
        cursor = self.cursors.get(topic)
        out: list[Out] = []
        if cursor is None:
            return out
        for frame in await self.reader.snapshot(topic=topic):
            if frame.epoch != cursor.epoch or frame.seq > cursor.seq:
                _give(cursor, frame, out)
        return out

    async def resume(self, topic: str, *, since_seq: int, epoch: str) -> Resume:
        """Replay what a reconnecting client missed since ``since_seq`` of ``epoch``; if history cannot,
        a resync and the snapshot."""
        cursor = self.cursors[topic]
        history = await self.reader.since(topic=topic, epoch=epoch, since_seq=since_seq, limit=self.history_limit)
        if history.gap is not None:
            latest = await self.reader.latest(topic=topic)
            out: list[Out] = [
                events.resync(
                    epoch=latest.epoch if latest else epoch,
                    topic=topic,
                    reason=history.gap,
                    latest_seq=latest.seq if latest else None,
                )
            ]
            cursor.epoch, cursor.seq = None, 0
            out.extend(await self.snapshot(topic))
            return Resume(out=out, outcome=RESYNCED, replayed=0)
        frames = list(history.frames)
        out = [events.resumed(epoch=epoch, topic=topic, since_seq=since_seq, replayed=len(frames)), *frames]
        last = frames[-1].seq if frames else since_seq
        if cursor.epoch == epoch:
            cursor.seq = max(cursor.seq, last)
        else:
            cursor.epoch, cursor.seq = epoch, last
        return Resume(out=out, outcome=REPLAYED, replayed=len(frames))


def _give(cursor: Cursor, frame: Frame, out: list[Out]) -> None:
    cursor.epoch, cursor.seq = frame.epoch, frame.seq
    out.append(frame)
