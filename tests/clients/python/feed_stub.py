"""A local WebSocket server on a real socket that plays a script per connection: frames to send, pauses, and
how to end (a close code, a drop without a close frame, or silence). It records each handshake's path and
headers, so a test sees what ``follow()`` asked for (its resume position, its key)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from websockets.asyncio.server import ServerConnection, serve


def status_frame(seq: int, epoch: str = "e1", **data: Any) -> dict[str, Any]:
    return {
        "type": "pipeline_status_update",
        "topic": "status",
        "seq": seq,
        "epoch": epoch,
        "timestamp": datetime(2026, 12, 7, 12, tzinfo=UTC).isoformat().replace("+00:00", "Z"),
        "data": {"overall_status": "healthy", "n": seq, **data},
    }


def reply_frame(kind: str, epoch: str = "e1", **data: Any) -> dict[str, Any]:
    return {"type": kind, "topic": None, "seq": 0, "epoch": epoch, "timestamp": "2026-12-07T12:00:00Z", "data": data}


@dataclass(frozen=True)
class Close:
    code: int


@dataclass(frozen=True)
class Drop:
    """End the TCP connection without a close frame (1006 at the client)."""


@dataclass(frozen=True)
class Silence:
    """Send nothing more, keep the socket open."""


@dataclass(frozen=True)
class Pause:
    seconds: float


Step = dict[str, Any] | str | Pause
End = Close | Drop | Silence


@dataclass
class Session:
    steps: list[Step] = field(default_factory=list)
    end: End = field(default_factory=Silence)


@dataclass(frozen=True)
class Handshake:
    path: str
    headers: dict[str, str]
    at: float


class FeedStub:
    def __init__(self, sessions: list[Session]) -> None:
        self._sessions = list(sessions)
        self.handshakes: list[Handshake] = []
        self.url = ""

    async def _handle(self, connection: ServerConnection) -> None:
        request = connection.request
        assert request is not None
        headers = {name.lower(): value for name, value in request.headers.raw_items()}
        self.handshakes.append(Handshake(request.path, headers, asyncio.get_running_loop().time()))
        session = self._sessions.pop(0) if self._sessions else Session(end=Close(4000))
        for step in session.steps:
            if isinstance(step, Pause):
                await asyncio.sleep(step.seconds)
            else:
                await connection.send(step if isinstance(step, str) else json.dumps(step))
        if isinstance(session.end, Close):
            await connection.close(session.end.code)
        elif isinstance(session.end, Drop):
            connection.transport.abort()
        else:
            await connection.wait_closed()

    def waits(self) -> list[float]:
        """Seconds between consecutive handshakes."""
        times = [h.at for h in self.handshakes]
        return [later - earlier for earlier, later in zip(times, times[1:], strict=False)]


@asynccontextmanager
async def feed_stub(sessions: list[Session]) -> AsyncIterator[FeedStub]:
    stub = FeedStub(sessions)
    async with serve(stub._handle, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        stub.url = f"http://127.0.0.1:{port}"
        yield stub
