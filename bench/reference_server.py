#!/usr/bin/env python3
"""Reference fan-out server for ``bench/live_feed``: the least a WebSocket broadcast can cost in Python.

Subscribes to one Redis pub/sub channel and hands every message to ``websockets.broadcast()`` for all
open connections, unchanged (a text frame). A new connection first gets the latest message, like
the project's snapshot. No compression, no per-connection state, no channel layer.

    .venv/bin/python bench/reference_server.py --port 8765 --redis-url redis://127.0.0.1:6379/0 --channel NAME
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import redis.asyncio as aioredis
from websockets.asyncio.server import ServerConnection, broadcast, serve


class Feed:
    def __init__(self) -> None:
        self.connections: set[ServerConnection] = set()
        self.latest: str | None = None
        self.messages = 0

    async def handler(self, websocket: ServerConnection) -> None:
        # Joined before the snapshot is written: a broadcast that lands in between can only repeat
        # the snapshot's message, never skip one.
        self.connections.add(websocket)
        try:
            if self.latest is not None:
                await websocket.send(self.latest)
            await websocket.wait_closed()
        finally:
            self.connections.discard(websocket)

    async def relay(self, redis_url: str, channel: str, ready: asyncio.Event) -> None:
        client = aioredis.from_url(redis_url)
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(channel)
            ready.set()
            async for message in pubsub.listen():
                if message["type"] != "message":
                    continue
                text = message["data"].decode()
                self.latest = text
                self.messages += 1
                broadcast(self.connections, text)
        finally:
            await pubsub.aclose()
            await client.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--channel", required=True)
    args = parser.parse_args()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    feed = Feed()
    ready = asyncio.Event()
    relay = asyncio.ensure_future(feed.relay(args.redis_url, args.channel, ready))
    # Same framing as daphne (which offers no permessage-deflate): plain text frames.
    async with serve(feed.handler, args.host, args.port, compression=None, max_size=2**16):
        await ready.wait()
        print(f"reference server listening on {args.host}:{args.port}", flush=True)
        await stop.wait()
    relay.cancel()
    print(f"relayed {feed.messages} messages", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
