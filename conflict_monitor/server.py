"""daphne's server with a lighter inbox per connection.

daphne gives every connection an ``asyncio.Queue`` for the messages its application receives: three
deques and an Event, about 3 KB held for as long as a WebSocket stays open, for a queue that holds
one or two messages at a time. ``Inbox`` does the two things daphne and the application ask of it
(``put_nowait`` and ``get``) in a few hundred bytes.

Import after ``conflict_monitor.serve.prepare()``: daphne.server keeps the reactor installed then.
"""

from __future__ import annotations

import asyncio
from collections import deque
from functools import partial
from typing import Any

from daphne import cli
from daphne.server import Server as DaphneServer


class Inbox:
    """An unbounded FIFO of messages for one application instance; ``get`` waits for the next."""

    __slots__ = ("_items", "_waiters")

    def __init__(self) -> None:
        # Made when first needed and dropped when empty. An open socket's application waits in
        # ``get`` nearly all the time: its one waiter sits in a list, a tenth of an empty deque.
        self._items: deque | None = None
        self._waiters: list[asyncio.Future] | None = None

    def put_nowait(self, item: Any) -> None:
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        self._wake_next()

    async def get(self) -> Any:
        while not self._items:
            waiter = asyncio.get_running_loop().create_future()
            if self._waiters is None:
                self._waiters = []
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                self._forget(waiter)
                # Woken and then cancelled: the item it was woken for goes to the next getter.
                if waiter.done() and not waiter.cancelled():
                    self._wake_next()
                raise
            self._forget(waiter)
        item = self._items.popleft()
        if not self._items:
            self._items = None
        return item

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def _wake_next(self) -> None:
        while self._waiters and self._items:
            waiter = self._waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                break
        if not self._waiters:
            self._waiters = None

    def _forget(self, waiter: asyncio.Future) -> None:
        if self._waiters is not None:
            if waiter in self._waiters:  # not if _wake_next took it off
                self._waiters.remove(waiter)
            if not self._waiters:
                self._waiters = None


class Server(DaphneServer):
    def create_application(self, protocol, scope):
        """daphne's own, with an ``Inbox`` where it makes an ``asyncio.Queue``."""
        assert "application_instance" not in self.connections[protocol]
        inbox = Inbox()
        scope.setdefault("asgi", {"version": "3.0"})
        application_instance = self.application(
            scope=scope, receive=inbox.get, send=partial(self.handle_reply, protocol)
        )
        if protocol not in self.connections:
            return None
        self.connections[protocol]["application_instance"] = asyncio.ensure_future(
            application_instance, loop=asyncio.get_event_loop()
        )
        return inbox


class CommandLineInterface(cli.CommandLineInterface):
    server_class = Server
