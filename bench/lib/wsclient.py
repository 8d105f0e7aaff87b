"""The load generator's WebSocket client: one socket as a bare asyncio protocol (RFC 6455).

The websockets library spends ~30 µs of the load generator's CPU per received frame; ``FeedClient``
reads a frame's envelope straight from the receive buffer, so one core can follow 10,000 sockets.
Every counted frame is checked on arrival (seq + 1 within one epoch) and, with a ``Tracker``, counted
per seq over all clients.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import time
from collections import Counter
from datetime import datetime
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

WS_PATH = "/ws/monitoring/pipeline-status"
STATUS_TYPE = "pipeline_status_update"
STATUS_MARK = f'"type":"{STATUS_TYPE}"'
# Twisted listens with a backlog of 50: more handshakes in flight only overflow the SYN queue, and a
# dropped SYN costs a 1 s retransmit that would be charged to the server.
CONNECT_CONCURRENCY = 50
# A handful of failed connects at 10,000 is reported; more means the run measured something broken.
CONNECT_FAILURES_TOLERATED = 0.01

# The envelope every topic frame starts with (monitoring.events.join_topic_frame), matched on the
# received bytes without a decode or JSON parse: the load generator's CPU per frame is the limit at 10,000
# sockets.
FRAME_HEAD = re.compile(
    rb'\{"type":"([a-z_]+)","topic":(?:"[^"]*"|null),"seq":(\d+),"epoch":"([^"]*)","timestamp":"([^"]+)"'
)
COUNTED_TYPES = frozenset((STATUS_TYPE.encode(), b"reference"))


_TS_CACHE: dict[bytes, float] = {}


def stamp_seconds(stamp: bytes) -> float:
    value = _TS_CACHE.get(stamp)
    if value is None:
        value = _TS_CACHE[stamp] = datetime.fromisoformat(stamp.decode().replace("Z", "+00:00")).timestamp()
    return value


class Tracker:
    """Receipts per seq over all clients: when each seq reached every client, and its publish stamp."""

    def __init__(self) -> None:
        self.expected = 0
        self.counts: dict[int, int] = {}
        self.stamps: dict[int, bytes] = {}
        self.completed: dict[int, float] = {}
        self.event = asyncio.Event()

    def note(self, seq: int, stamp: bytes) -> None:
        count = self.counts.get(seq, 0) + 1
        self.counts[seq] = count
        if count == 1:
            self.stamps[seq] = stamp
        if count == self.expected:
            self.completed[seq] = time.perf_counter()
            self.event.set()

    def latest_complete(self) -> int:
        return max(self.completed, default=-1)

    async def wait_new_complete(self, timeout: float, *, published_after: float | None = None) -> int | None:
        """The next seq that every client received, or None after ``timeout``. With ``published_after``
        (wall clock) only a frame published since counts: frames of a backlog still completing must
        not start a window before a new publisher has even started."""
        baseline = self.latest_complete()
        deadline = time.perf_counter() + timeout

        def waiting() -> bool:
            latest = self.latest_complete()
            if latest <= baseline:
                return True
            return published_after is not None and stamp_seconds(self.stamps[latest]) < published_after

        while waiting():
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return None
            self.event.clear()
            try:
                await asyncio.wait_for(self.event.wait(), remaining)
            except TimeoutError:
                return None
        return self.latest_complete()

    def backlog(self) -> bool:
        """Some client still lacks the newest seq that any client has."""
        newest = max(self.counts, default=None)
        return newest is not None and self.counts[newest] < self.expected


CHECK_KEYS = (
    "gaps",
    "missing_frames",
    "repeats",
    "out_of_order",
    "epoch_changes",
    "resyncs",
    "other_frames",
    "unparsed",
)


class FeedClient(asyncio.Protocol):
    """One WebSocket as a bare asyncio protocol (RFC 6455: unmasked server frames, no extensions).

    The websockets library spends ~30 µs of the load generator's CPU per received frame; this reads a
    frame's envelope straight from the receive buffer, so one core can follow 10,000 sockets. Every
    status frame is checked on arrival: its seq must be the previous one + 1 within one epoch."""

    def __init__(self, port: int, path: str, *, tracker: Tracker | None, keep_text: bool) -> None:
        loop = asyncio.get_running_loop()
        key = base64.b64encode(os.urandom(16)).decode()
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        self.tracker = tracker
        self.keep_text = keep_text
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.upgraded = False
        self.opened = loop.create_future()
        self.first = loop.create_future()
        self.lost = loop.create_future()
        # (receipt perf_counter, receipt wall clock, seq, publish stamp) per counted frame.
        self.frames: list[tuple[float, float, int, bytes]] = []
        self.texts: list[str] = []
        self.received = 0
        self.last_seq: int | None = None
        self.last_epoch: bytes | None = None
        self.check = dict.fromkeys(CHECK_KEYS, 0)
        self.closing = False
        self.closed: str | None = None
        self.fragments: bytearray | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc) -> None:
        if not self.closing and self.closed is None:
            self.closed = f"dropped ({exc.__class__.__name__ if exc else 'EOF'})"
        for future in (self.opened, self.first):
            if not future.done():
                future.set_exception(ConnectionError(f"closed before the first frame: {self.closed}"))
        if not self.lost.done():
            self.lost.set_result(None)

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[: buf.find(b"\r\n")])
            del buf[: end + 4]
            if not status.startswith(b"HTTP/1.1 101"):
                self.closed = f"handshake refused: {status.decode(errors='replace')}"
                self.opened.set_exception(ConnectionError(self.closed))
                self.transport.close()
                return
            self.upgraded = True
            self.opened.set_result(None)
        perf, wall = time.perf_counter(), time.time()
        pos, size = 0, len(buf)
        while size - pos >= 2:
            first, length = buf[pos], buf[pos + 1] & 0x7F
            head = 2
            if length == 126:
                if size - pos < 4:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            start, end = pos + head, pos + head + length
            if end > size:
                break
            opcode = first & 0x0F
            if opcode == 1 and first & 0x80:
                self._text(buf, start, end, perf, wall)
            elif opcode in (0, 1):
                self.fragments = (self.fragments or bytearray()) + buf[start:end]
                if first & 0x80:
                    whole, self.fragments = self.fragments, None
                    self._text(whole, 0, len(whole), perf, wall)
            elif opcode == 9:
                self._send(0xA, bytes(buf[start:end]))
            elif opcode == 8:
                if not self.closing:
                    code = int.from_bytes(buf[start : start + 2], "big") if length >= 2 else None
                    self.closed = f"closed by the server ({code})"
                    self._send(0x8, bytes(buf[start : start + 2]))
                self.transport.close()
            pos = end
        if pos:
            del buf[:pos]

    def _text(self, buf, start: int, end: int, perf: float, wall: float) -> None:
        self.received += 1
        match = FRAME_HEAD.match(buf, start, end)
        if match is None:
            self.check["unparsed"] += 1
        else:
            kind = match[1]
            if kind in COUNTED_TYPES:
                seq, epoch = int(match[2]), match[3]
                last = self.last_seq
                if self.last_epoch is not None and epoch != self.last_epoch:
                    self.check["epoch_changes"] += 1
                elif last is not None and seq != last + 1:
                    if seq == last:
                        self.check["repeats"] += 1
                    elif seq < last:
                        self.check["out_of_order"] += 1
                    else:
                        self.check["gaps"] += 1
                        self.check["missing_frames"] += seq - last - 1
                if last is None or seq > last:
                    self.last_seq = seq
                self.last_epoch = epoch
                stamp = match[4]
                self.frames.append((perf, wall, seq, stamp))
                if self.keep_text:
                    self.texts.append(bytes(buf[start:end]).decode())
                if self.tracker is not None:
                    self.tracker.note(seq, stamp)
            elif kind == b"resync":
                self.check["resyncs"] += 1
            else:
                self.check["other_frames"] += 1
        if not self.first.done():
            self.first.set_result(perf)

    def _send(self, opcode: int, payload: bytes) -> None:
        """A client frame: masked, as RFC 6455 requires (control frames only here, < 126 bytes)."""
        if self.transport is None or self.transport.is_closing():
            return
        mask = os.urandom(4)
        masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
        self.transport.write(bytes((0x80 | opcode, 0x80 | len(payload))) + mask + masked)

    async def close(self) -> None:
        if self.transport is None or self.lost.done():
            return
        self.closing = True
        self._send(0x8, (1000).to_bytes(2, "big"))
        try:
            await asyncio.wait_for(asyncio.shield(self.lost), 10)
        except TimeoutError:
            self.transport.abort()


async def open_client(port: int, path: str = WS_PATH, *, tracker: Tracker | None, keep_text: bool) -> FeedClient:
    loop = asyncio.get_running_loop()
    _transport, client = await loop.create_connection(
        lambda: FeedClient(port, path, tracker=tracker, keep_text=keep_text), "127.0.0.1", port
    )
    await asyncio.wait_for(asyncio.shield(client.opened), 60)
    return client


async def open_clients(
    port: int, path: str, count: int, *, tracker: Tracker | None, keep_text: bool
) -> tuple[list[FeedClient], int]:
    """``count`` clients that each received their first frame, and how many connects failed."""
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one() -> FeedClient:
        async with gate:
            client = await open_client(port, path, tracker=tracker, keep_text=keep_text)
        await asyncio.wait_for(asyncio.shield(client.first), 60)
        return client

    outcomes = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
    clients = [outcome for outcome in outcomes if isinstance(outcome, FeedClient)]
    failures = [outcome for outcome in outcomes if not isinstance(outcome, FeedClient)]
    if len(failures) > CONNECT_FAILURES_TOLERATED * count:
        await close_clients(clients)
        reasons = Counter(f"{type(error).__name__}: {error}"[:120] for error in failures)
        raise RuntimeError(f"{len(failures)} of {count} connects failed: {reasons.most_common(3)}")
    return clients, len(failures)


async def close_clients(clients: list[FeedClient]) -> None:
    gate = asyncio.Semaphore(500)

    async def one(client: FeedClient) -> None:
        async with gate:
            await client.close()

    await asyncio.gather(*(one(client) for client in clients), return_exceptions=True)


def sequence_check(clients: list[FeedClient]) -> dict[str, Any]:
    totals = dict.fromkeys(CHECK_KEYS, 0)
    for client in clients:
        for key, value in client.check.items():
            totals[key] += value
    totals["unexpected_closes"] = sorted(Counter(c.closed for c in clients if c.closed).items())
    return totals


# --- HTTP -------------------------------------------------------------------------------------


class CountingClients:
    """Clients on the websockets library that only count what they receive; the first one also counts the
    status frames (a broadcaster's ticks). For a few thousand sockets; ``FeedClient`` for more."""

    def __init__(self, url: str, *, concurrency: int = CONNECT_CONCURRENCY) -> None:
        self.url = url
        self.concurrency = concurrency
        self.sockets: list[ClientConnection] = []
        self.readers: list[asyncio.Task] = []
        self.frames = 0
        self.first_client_status_frames = 0
        self.closed_early = 0

    async def grow(self, total: int) -> float:
        """Connect up to ``total`` clients; the seconds it took."""
        started = time.perf_counter()
        semaphore = asyncio.Semaphore(self.concurrency)

        async def open_one() -> ClientConnection:
            async with semaphore:
                return await connect(self.url, compression=None, ping_interval=None, max_size=None, open_timeout=60)

        opened = await asyncio.gather(*(open_one() for _ in range(total - len(self.sockets))))
        for ws in opened:
            self.readers.append(asyncio.ensure_future(self._read(ws, first=not self.sockets)))
            self.sockets.append(ws)
        return round(time.perf_counter() - started, 2)

    async def _read(self, ws: ClientConnection, *, first: bool) -> None:
        try:
            async for text in ws:
                self.frames += 1
                if first and STATUS_MARK in text[:80]:
                    self.first_client_status_frames += 1
        except ConnectionClosed:
            self.closed_early += 1

    async def close(self) -> None:
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)
        for reader in self.readers:
            reader.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)
