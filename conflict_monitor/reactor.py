"""A Twisted reactor for daphne that flushes writes once per loop iteration.

Twisted's asyncio reactor hands a socket to epoll on every write and takes it back once the data is
out: two ``epoll_ctl`` calls, two selector-key rebuilds and one loop callback per message and socket.
When one frame goes to thousands of sockets that bookkeeping was the largest share of the server's
CPU per delivered frame. This reactor collects the sockets written to during a loop iteration and
writes them all from a single callback; only a socket whose kernel buffer is full is handed to epoll,
exactly as before. Reads, timers and everything else are the asyncio reactor's.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

from twisted.internet.asyncioreactor import AsyncioSelectorReactor
from twisted.internet.main import installReactor

_ABSENT = object()


class FlushingAsyncioReactor(AsyncioSelectorReactor):
    def __init__(self, eventloop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(eventloop)
        self._due: dict = {}  # writers with data since the last flush, in write order
        self._flushing: dict = {}  # the batch being flushed: a writer removed meanwhile is skipped
        self._current = None  # the writer being flushed
        self._current_wants_more = False

    def addWriter(self, writer) -> None:
        if writer in self._due or writer in self._writers or self._continuousPolling.isWriting(writer):
            return
        if not self._due:
            self._asyncioEventloop.call_soon(self._flush)
        self._due[writer] = None

    def removeWriter(self, writer) -> None:
        if writer is self._current:
            self._current_wants_more = False
        self._due.pop(writer, None)
        self._flushing.pop(writer, None)
        super().removeWriter(writer)  # a no-op unless epoll watches it

    def getWriters(self) -> list:
        pending = [*self._due, *self._flushing, *([self._current] if self._current is not None else [])]
        return pending + super().getWriters()

    def removeAll(self) -> list:
        pending = {**self._due, **self._flushing}
        self._due.clear()
        self._flushing.clear()
        removed = super().removeAll()
        known = set(removed)
        return removed + [writer for writer in pending if writer not in known]

    def _flush(self) -> None:
        self._flushing, self._due = self._due, {}
        for writer in list(self._flushing):
            if self._flushing.pop(writer, _ABSENT) is _ABSENT:
                continue  # removed while an earlier writer was flushed
            self._current, self._current_wants_more = writer, True
            try:
                # doWrite with the asyncio reactor's own error handling: a failed send disconnects
                # the socket (and calls removeWriter); a finished one calls stopWriting.
                self._readOrWrite(writer, False)
                if self._current_wants_more and writer.fileno() != -1:
                    # The kernel buffer is full: wait for epoll to say the socket can take more.
                    super().addWriter(writer)
            except Exception:
                self._log.failure("flushing a writer failed")
            finally:
                self._current = None


def install() -> FlushingAsyncioReactor:
    """Install the reactor; call before anything imports ``twisted.internet.reactor`` (daphne does)."""
    loop = asyncio.new_event_loop()
    if "ASGI_THREADS" in os.environ:  # as daphne does for the loop it would have made
        loop.set_default_executor(ThreadPoolExecutor(max_workers=int(os.environ["ASGI_THREADS"])))
    reactor = FlushingAsyncioReactor(loop)
    installReactor(reactor)
    return reactor
