"""One connection's outgoing order: a client request (or a gap fill) runs alone, and frames offered
meanwhile wait in a bounded backlog and go out after it, through the delivery engine.

Transport-free: ``send`` is the consumer's; nothing here knows about sockets.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from monitoring.feed.delivery import Delivery, Out
from monitoring.feed.frames import Frame

logger = logging.getLogger(__name__)


class InOrder:
    # One per open socket: slots keep thousands of them small (no per-instance dict).
    __slots__ = ("delivery", "send", "bound", "serial", "backlog", "drainer")

    def __init__(self, *, delivery: Delivery, send: Callable[[Out], Awaitable[None]], bound: int) -> None:
        self.delivery = delivery
        self.send = send
        self.bound = bound
        self.serial = asyncio.Lock()
        # Frames (and stale notices, as text) offered while a request or gap fill is under way; None
        # when nothing is.
        self.backlog: deque[Out] | None = None
        self.drainer: asyncio.Future | None = None

    def goes_straight_out(self, frame: Frame) -> bool:
        """Whether ``frame`` is the next of its topic with nothing waiting (the cursor then moves to it):
        the caller sends it at once. Synchronous, so the hot path costs no extra coroutine."""
        return self.backlog is None and self.delivery.take_if_next(frame)

    async def offer(self, frame: Frame) -> None:
        """The fan-out's hand-off of each frame of a followed topic, in publish order.

        The next frame in sequence goes straight out. Anything else (a gap, a new epoch, or a request
        under way) waits in the backlog for the drain, in this connection's own task, so one
        connection's history lookup never holds up the frame for every other one.
        """
        if frame.topic not in self.delivery.cursors:
            return
        if self.goes_straight_out(frame):
            await self.send(frame)
            return
        if self.backlog is None:
            self.backlog = deque(maxlen=self.bound)
            self.drainer = asyncio.ensure_future(self._drain())
        # Beyond the bound the oldest frames go: the gap they leave is filled from history or resynced.
        self.backlog.append(frame)

    async def notice(self, text: str) -> None:
        """A direct notice (``status_stale``): after any frame already waiting, so order holds."""
        if self.backlog is not None:
            self.backlog.append(text)
            return
        await self.send(text)

    async def _drain(self) -> None:
        try:
            async with self.alone():
                pass
        except Exception:
            logger.exception("delivering the backlog failed; the next frame fills the gap")

    @asynccontextmanager
    async def alone(self) -> AsyncIterator[None]:
        """Run a request (or a backlog drain) alone; frames offered meanwhile follow it in order."""
        async with self.serial:
            if self.backlog is None:
                self.backlog = deque(maxlen=self.bound)
            try:
                yield
            finally:
                try:
                    while self.backlog:
                        item = self.backlog.popleft()
                        for out in [item] if isinstance(item, str) else await self.delivery.deliver(item):
                            await self.send(out)
                finally:
                    self.backlog = None

    def cancel(self) -> None:
        if self.drainer is not None:
            self.drainer.cancel()
            self.drainer = None
