"""The interface every feed store implements (``MemoryFeedStore`` for one process, ``RedisFeedStore``
shared by all), and the answer of a history lookup."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from monitoring.events import TopicFrameParts
from monitoring.feed.frames import Frame

# Why a history lookup cannot fill a gap (``History.gap``): the client must resync.
EPOCH_CHANGED = "epoch_changed"
HISTORY_TRIMMED = "history_trimmed"
FUTURE_SEQ = "future_seq"
HISTORY_UNAVAILABLE = "history_unavailable"  # the store could not be read


@dataclass(frozen=True)
class History:
    """The frames after a seq, in order, or why there are none to give (``gap``)."""

    frames: tuple[Frame, ...] = ()
    gap: str | None = None

    @classmethod
    def missing(cls, reason: str) -> History:
        return cls(gap=reason)

    def fills(self, seq: int) -> bool:
        """Whether these frames continue ``seq`` without a hole."""
        return self.gap is None and bool(self.frames) and self.frames[0].seq == seq + 1


class FeedStore(Protocol):
    """Per topic: an epoch, a seq counter, a bounded history and the latest full-state frame."""

    async def publish(self, *, topic: str, parts: TopicFrameParts) -> Frame:
        """Assign the next seq (a new epoch at seq 1 if the topic has none) and keep the frame."""
        ...

    async def latest(self, *, topic: str) -> Frame | None: ...

    async def snapshot(self, *, topic: str) -> list[Frame]:
        """The latest full-state frame, then every later frame on the topic (``[]``: none yet)."""
        ...

    async def since(self, *, topic: str, epoch: str, since_seq: int, limit: int) -> History:
        """The frames after ``since_seq`` in ``epoch`` (at most ``limit``), or the gap's reason."""
        ...

    async def close(self) -> None: ...
