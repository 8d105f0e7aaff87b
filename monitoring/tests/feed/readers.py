"""A feed store read the way a connection reads it (history, snapshots, the latest status frame), for
the delivery, ordering and request engines' tests; ``broken`` makes history lookups fail."""

from __future__ import annotations

from monitoring import events
from monitoring.feed.frames import Frame
from monitoring.feed.memory_store import MemoryFeedStore
from monitoring.feed.store import History


class StoreReader:
    def __init__(self, store: MemoryFeedStore) -> None:
        self.store = store
        self.broken = False

    async def since(self, **kwargs) -> History:
        if self.broken:
            raise ConnectionError("store away")
        return await self.store.since(**kwargs)

    async def snapshot(self, *, topic: str) -> list[Frame]:
        return await self.store.snapshot(topic=topic)

    async def latest(self, *, topic: str) -> Frame | None:
        return await self.store.latest(topic=topic)

    async def status_frame(self) -> Frame | None:
        return await self.store.latest(topic=events.STATUS_TOPIC)
