"""Feed store in Redis, shared by every server process and broadcaster.

Per topic: a hash ``{epoch, seq, snapshot_seq, snapshot}`` and a stream of frames (entry id
``<seq>-0``, MAXLEN ~N). A Lua script assigns the seq and appends the frame atomically, so seq
order, history order and the frame text agree across processes. The latest full-state frame is
kept in the hash as well: history trimming never loses it, and on the alerts topic the newest
frame is often a single change that cannot serve as a snapshot. Epoch, seq and snapshot live in
one key: they vanish together (a Redis flush), and the next publish starts a new epoch at seq 1,
which clients see as a resync.
"""

from __future__ import annotations

import secrets

import redis.asyncio as aioredis

from monitoring import lua
from monitoring.events import TopicFrameParts
from monitoring.feed.frames import Frame
from monitoring.feed.store import EPOCH_CHANGED, FUTURE_SEQ, HISTORY_TRIMMED, History

_PUBLISH = lua.script("feed_publish")

_SINCE = lua.script("feed_since")

_LATEST = lua.script("feed_latest")


_SNAPSHOT = lua.script("feed_snapshot")


def _seq(entry_id: bytes | str) -> int:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0])


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisFeedStore:  # implements monitoring.feed.store.FeedStore
    def __init__(self, *, client: aioredis.Redis, prefix: str, history_length: int) -> None:
        self.client = client
        self.prefix = prefix
        self.history_length = history_length
        self._publish = client.register_script(_PUBLISH)
        self._since = client.register_script(_SINCE)
        self._latest = client.register_script(_LATEST)
        self._snapshot = client.register_script(_SNAPSHOT)

    def _keys(self, topic: str) -> list[str]:
        return [f"{self.prefix}:feed:{topic}:state", f"{self.prefix}:feed:{topic}:history"]

    async def publish(self, *, topic: str, parts: TopicFrameParts) -> Frame:
        seq, epoch, text = await self._publish(
            keys=self._keys(topic),
            args=[
                secrets.token_hex(8),
                parts.type_json,
                parts.topic_json,
                parts.timestamp_json,
                parts.data_json,
                self.history_length,
                "1" if parts.snapshot else "0",
            ],
        )
        return Frame(topic, int(seq), _text(epoch), _text(text))

    async def latest(self, *, topic: str) -> Frame | None:
        found = await self._latest(keys=self._keys(topic))
        if not found:
            return None
        entry_id, epoch, text = found
        return Frame(topic, _seq(entry_id), _text(epoch), _text(text))

    async def snapshot(self, *, topic: str) -> list[Frame]:
        """The latest full-state frame, then every later frame on the topic (``[]``: none yet)."""
        found = await self._snapshot(keys=self._keys(topic))
        if not found:
            return []
        epoch, snapshot_seq, snapshot = _text(found[0]), int(found[1]), _text(found[2])
        rest = found[3:]
        return [
            Frame(topic, snapshot_seq, epoch, snapshot),
            *(Frame(topic, _seq(rest[i]), epoch, _text(rest[i + 1])) for i in range(0, len(rest), 2)),
        ]

    async def since(self, *, topic: str, epoch: str, since_seq: int, limit: int) -> History:
        result = await self._since(keys=self._keys(topic), args=[epoch, since_seq, limit])
        verdict = _text(result[0])
        if verdict in (EPOCH_CHANGED, FUTURE_SEQ, HISTORY_TRIMMED):
            return History.missing(verdict)
        pairs = result[1:]
        return History(
            frames=tuple(Frame(topic, _seq(pairs[i]), epoch, _text(pairs[i + 1])) for i in range(0, len(pairs), 2))
        )

    async def close(self) -> None:
        await self.client.aclose()
