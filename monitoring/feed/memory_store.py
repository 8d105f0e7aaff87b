"""Feed store for a single process (embedded default: no Redis)."""

from __future__ import annotations

import secrets
from collections import deque
from dataclasses import dataclass, field

from monitoring.events import TopicFrameParts, join_topic_frame
from monitoring.feed.frames import Frame
from monitoring.feed.store import EPOCH_CHANGED, FUTURE_SEQ, HISTORY_TRIMMED, History


@dataclass
class _Topic:
    epoch: str
    seq: int = 0
    history: deque[Frame] = field(default_factory=deque)
    snapshot: Frame | None = None


class MemoryFeedStore:  # implements monitoring.feed.store.FeedStore
    def __init__(self, *, history_length: int) -> None:
        self.history_length = history_length
        self._topics: dict[str, _Topic] = {}

    async def publish(self, *, topic: str, parts: TopicFrameParts) -> Frame:
        state = self._topics.get(topic)
        if state is None:
            state = self._topics[topic] = _Topic(epoch=secrets.token_hex(8), history=deque(maxlen=self.history_length))
        state.seq += 1
        frame = Frame(topic, state.seq, state.epoch, join_topic_frame(parts, seq=state.seq, epoch=state.epoch))
        state.history.append(frame)
        if parts.snapshot:
            state.snapshot = frame
        return frame

    async def latest(self, *, topic: str) -> Frame | None:
        state = self._topics.get(topic)
        return state.history[-1] if state and state.history else None

    async def snapshot(self, *, topic: str) -> list[Frame]:
        """The latest full-state frame, then every later frame on the topic (``[]``: none yet)."""
        state = self._topics.get(topic)
        if state is None or state.snapshot is None:
            return []
        after = [frame for frame in state.history if frame.seq > state.snapshot.seq]
        return [state.snapshot, *_contiguous(after, state.snapshot.seq)]

    async def since(self, *, topic: str, epoch: str, since_seq: int, limit: int) -> History:
        state = self._topics.get(topic)
        if state is None or state.epoch != epoch:
            return History.missing(EPOCH_CHANGED)
        if since_seq > state.seq:
            return History.missing(FUTURE_SEQ)
        if since_seq == state.seq:
            return History()
        if state.seq - since_seq > limit or not state.history or state.history[0].seq > since_seq + 1:
            return History.missing(HISTORY_TRIMMED)
        return History(frames=tuple(frame for frame in state.history if frame.seq > since_seq))

    async def close(self) -> None:
        return None


def _contiguous(frames: list[Frame], after_seq: int) -> list[Frame]:
    """``frames`` if they continue ``after_seq`` without a hole; otherwise none (history was trimmed)."""
    return frames if frames and frames[0].seq == after_seq + 1 else []
