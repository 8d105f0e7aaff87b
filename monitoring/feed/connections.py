"""Live-feed connection caps across every server process: a total and a per-IP limit.

Each process counts its own connections in Redis hashes (field = process id) and keeps a heartbeat
key alive; a crashed process's counts stop counting once its heartbeat expires, so caps heal
without anyone decrementing for it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections import Counter

from django.conf import settings

from monitoring import lua

logger = logging.getLogger(__name__)

ACCEPTED = "accepted"
TOTAL_CAP = "total_cap"
IP_CAP = "ip_cap"
HEARTBEAT_TTL = 15
HEARTBEAT_EVERY = 5

_ACQUIRE = lua.script("connections_acquire")

_RELEASE = lua.script("connections_release")


class MemoryConnectionRegistry:
    """Caps for the single-process embedded default."""

    def __init__(self) -> None:
        self.total = 0
        self.per_ip: Counter[str] = Counter()

    async def acquire(self, *, ip: str) -> str:
        if self.total >= settings.WEBSOCKET_MAX_CONNECTIONS:
            return TOTAL_CAP
        if self.per_ip[ip] >= settings.WEBSOCKET_MAX_CONNECTIONS_PER_IP:
            return IP_CAP
        self.total += 1
        self.per_ip[ip] += 1
        return ACCEPTED

    async def release(self, *, ip: str) -> None:
        self.total -= 1
        self.per_ip[ip] -= 1
        if self.per_ip[ip] <= 0:
            del self.per_ip[ip]


class RedisConnectionRegistry:
    def __init__(self, *, client, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.process_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)
        self._heartbeat: asyncio.Task | None = None

    def _alive_prefix(self) -> str:
        return f"{self.prefix}:ws:alive:"

    def _keys(self, ip: str) -> list[str]:
        return [f"{self.prefix}:ws:connections", f"{self.prefix}:ws:ip:{ip}"]

    async def acquire(self, *, ip: str) -> str:
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.ensure_future(self._beat())
        verdict = await self._acquire(
            keys=self._keys(ip),
            args=[
                self.process_id,
                settings.WEBSOCKET_MAX_CONNECTIONS,
                settings.WEBSOCKET_MAX_CONNECTIONS_PER_IP,
                self._alive_prefix(),
                HEARTBEAT_TTL,
            ],
        )
        return verdict.decode() if isinstance(verdict, bytes) else verdict

    async def release(self, *, ip: str) -> None:
        await self._release(keys=self._keys(ip), args=[self.process_id])

    async def _beat(self) -> None:
        key = self._alive_prefix() + self.process_id
        while True:
            try:
                await self.client.set(key, 1, ex=HEARTBEAT_TTL)
            except Exception:
                logger.warning("connection-count heartbeat failed; retrying")
            await asyncio.sleep(HEARTBEAT_EVERY)
