"""Overrides of Twisted: a reactor that flushes writes once per loop iteration, and HTTP requests whose
form bodies are not parsed.

``FlushingAsyncioReactor``: Twisted's asyncio reactor hands a socket to epoll on every write and takes
it back once the data is out: two ``epoll_ctl`` calls, two selector-key rebuilds and one loop callback
per message and socket. When one frame goes to thousands of sockets that bookkeeping was the largest
share of the server's CPU per delivered frame. This reactor collects the sockets written to during a
loop iteration and writes them all from a single callback; only a socket whose kernel buffer is full
is handed to epoll, exactly as before. Reads, timers and everything else are the asyncio reactor's.

``UnparsedFormBodies`` (a base of daphne's request in ``conflict_monitor.overrides.daphne``): Twisted
parses the body of every POST sent as a form (``application/x-www-form-urlencoded``,
``multipart/form-data``) into ``request.args`` before daphne sees the request, and daphne never reads
them. A multipart body Twisted cannot parse (JSON sent as multipart, a missing boundary) was answered
with a bare ``400``, without a header or a body. Unparsed, the body goes to the application as it
came, and the API answers it as any other body it does not take: a JSON ``415``.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

from twisted.internet.asyncioreactor import AsyncioSelectorReactor
from twisted.internet.main import installReactor

from conflict_monitor.overrides import ATTRIBUTE, INSTANCE_ATTRIBUTE, METHOD, Member

_REACTOR = "twisted.internet.asyncioreactor:AsyncioSelectorReactor"

RELIES_ON = [
    Member(_REACTOR, "__init__", METHOD, "(eventloop)", why="`FlushingAsyncioReactor` passes the loop positionally"),
    Member(_REACTOR, "_asyncioEventloop", INSTANCE_ATTRIBUTE, why="the flush is scheduled on it (`call_soon`)"),
    Member(_REACTOR, "_writers", INSTANCE_ATTRIBUTE, why="a writer epoll already watches is not batched"),
    Member(_REACTOR, "_continuousPolling", INSTANCE_ATTRIBUTE, why="nor one it polls"),
    Member(
        "twisted.internet.posixbase:_ContinuousPolling",
        "isWriting",
        METHOD,
        "(fd)",
        why="asked whether it polls a writer",
    ),
    Member(
        _REACTOR,
        "_readOrWrite",
        METHOD,
        "(selectable, read)",
        why="writes a batched socket with the reactor's own error handling",
    ),
    Member(_REACTOR, "_log", ATTRIBUTE, why="logs a failed flush"),
    Member(_REACTOR, "addWriter", METHOD, "(writer)", why="overridden; a full socket still goes to epoll through it"),
    Member(_REACTOR, "removeWriter", METHOD, "(writer)", why="overridden, and called for a writer epoll watches"),
    Member(_REACTOR, "getWriters", METHOD, "()", why="overridden: the batched writers are added"),
    Member(_REACTOR, "removeAll", METHOD, "()", why="overridden: the batched writers are added"),
    Member(
        "twisted.web.http:Request",
        "__init__",
        METHOD,
        "(channel, queued, parsePOSTFormSubmission)",
        why="`UnparsedFormBodies` passes `parsePOSTFormSubmission=False` (Twisted 24.11 had no such keyword)",
    ),
]

CHECKED_AGAINST = {"Twisted": "26.10.0"}

MEASURED_GAIN = {
    "`FlushingAsyncioReactor`": (
        "CPU per delivered message at 1,000 clients 70 → 40 µs in the quick run of its commit (b59783b; the "
        "`websockets` reference 16.5 µs in the same runs); 59.5 µs (2.5× the reference) in the bench of the time "
        "(docs/performance.md): two `epoll_ctl` calls and a loop callback per socket per frame removed"
    ),
    "`UnparsedFormBodies`": (
        "not measured (correctness: a multipart body Twisted could not parse got a bare 400 without a body; "
        "the API now answers it with its JSON 415)"
    ),
}

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


class UnparsedFormBodies:
    """A base for a ``twisted.web.http.Request`` subclass: form bodies stay unparsed."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, parsePOSTFormSubmission=False, **kwargs)
