"""Overrides of daphne: its server with a lighter inbox per connection, and its HTTP request hardened
against input that daphne answered without the application.

``Server``: daphne gives every connection an ``asyncio.Queue`` for the messages its application
receives: three deques and an Event, about 3 KB held for as long as a WebSocket stays open, for a
queue that holds one or two messages at a time. ``Inbox`` does the two things daphne and the
application ask of it (``put_nowait`` and ``get``) in a few hundred bytes.

``WebRequest`` (with Twisted's part, ``conflict_monitor.overrides.twisted.UnparsedFormBodies``: form
bodies reach the application unparsed):

- daphne decodes a few headers itself (``Daphne-Root-Path`` as ASCII; with ``--proxy-headers`` the
  forwarded address, port and scheme as UTF-8), and a value it could not decode ended in its ``500``
  page. Such a request is a ``400``.
- daphne's own error pages are HTML; under ``/api/`` they are the API's JSON error body.

Import after the project's reactor is installed (``conflict_monitor.serve.prepare()``): daphne's
server, imported here, installs an asyncio reactor of its own when none is installed yet.
"""

from __future__ import annotations

import asyncio
from collections import deque
from functools import partial
from typing import Any

from daphne import cli, http_protocol
from daphne.server import Server as DaphneServer

from conflict_monitor.overrides import ATTRIBUTE, COROUTINE, INSTANCE_ATTRIBUTE, METHOD, Member
from conflict_monitor.overrides.twisted import UnparsedFormBodies
from monitoring.errors import error_json

_REQUEST = "daphne.http_protocol:WebRequest"
_SERVER = "daphne.server:Server"

RELIES_ON = [
    Member(
        "daphne.http_protocol",
        "WebRequest",
        ATTRIBUTE,
        read_by="HTTPFactory.buildProtocol",
        why="replaced by `install()`: daphne's factory builds every request from the module's `WebRequest`",
    ),
    Member(_REQUEST, "__init__", METHOD, "(*args, **kwargs)", why="passes `parsePOSTFormSubmission` on to Twisted's"),
    Member(_REQUEST, "process", METHOD, "()", why="overridden: a header daphne cannot decode is refused first"),
    Member(
        _REQUEST,
        "basic_error",
        METHOD,
        "(status, status_text, body)",
        why="overridden (a JSON body under /api/), called positionally",
    ),
    Member(_REQUEST, "handle_reply", METHOD, "(message)", why="sends the JSON error"),
    Member(_REQUEST, "server", INSTANCE_ATTRIBUTE, why="the server's proxy-header settings are read from it"),
    Member(_SERVER, "proxy_forwarded_address_header", INSTANCE_ATTRIBUTE, why="a header daphne decodes as UTF-8"),
    Member(_SERVER, "proxy_forwarded_port_header", INSTANCE_ATTRIBUTE, why="a header daphne decodes as UTF-8"),
    Member(_SERVER, "proxy_forwarded_proto_header", INSTANCE_ATTRIBUTE, why="a header daphne decodes as UTF-8"),
    Member(
        _SERVER,
        "create_application",
        METHOD,
        "(protocol, scope)",
        why="overridden: daphne's own, with an `Inbox` where it makes an `asyncio.Queue`",
    ),
    Member(
        _SERVER, "connections", INSTANCE_ATTRIBUTE, why="the application instance is recorded there, as daphne does"
    ),
    Member(_SERVER, "application", INSTANCE_ATTRIBUTE, why="the ASGI application it instantiates"),
    Member(_SERVER, "handle_reply", COROUTINE, "(protocol, message)", why="the application's `send`"),
    Member(
        "daphne.cli:CommandLineInterface",
        "server_class",
        ATTRIBUTE,
        read_by="run",
        why="set to `Server` by this module's `CommandLineInterface`",
    ),
]

CHECKED_AGAINST = {"daphne": "4.2.3"}

MEASURED_GAIN = {
    "`Server` (its `Inbox`)": (
        "29 → 18 KB RSS per open socket together with the handshake state let go in "
        "`conflict_monitor.overrides.autobahn` (docs/performance.md); daphne's `asyncio.Queue` was 3 KB of it"
    ),
    "`WebRequest`": (
        "not measured (correctness: an undecodable `Daphne-Root-Path` or forwarded header got daphne's HTML 500, "
        "now a 400; daphne's error pages under /api/ are the API's JSON error body)"
    ),
}

API_PREFIX = b"/api/"
ROOT_PATH_HEADER = b"daphne-root-path"
ERROR_CODES = {400: "bad_request", 500: "server_error", 503: "service_unavailable"}


class WebRequest(UnparsedFormBodies, http_protocol.WebRequest):
    def process(self):
        if self._undecodable_header() is not None:
            self.basic_error(400, b"Bad Request", "A header value is not text.")
            return None
        return super().process()

    def _undecodable_header(self) -> bytes | None:
        """The name of a header daphne would fail to decode, if the request has one."""
        codecs = {ROOT_PATH_HEADER: "ascii"}
        server = self.server
        for name in (
            server.proxy_forwarded_address_header,
            server.proxy_forwarded_port_header,
            server.proxy_forwarded_proto_header,
        ):
            if name:
                codecs[name.lower().encode()] = "utf-8"
        for name, values in self.requestHeaders.getAllRawHeaders():
            codec = codecs.get(name.lower())
            for value in values if codec else ():
                try:
                    value.decode(codec)
                except UnicodeDecodeError:
                    return name
        return None

    def basic_error(self, status: int, status_text: bytes, body: str) -> None:
        if not (self.uri or b"").startswith(API_PREFIX):
            super().basic_error(status, status_text, body)
            return
        content = error_json(code=ERROR_CODES.get(status, "error"), detail=body)
        headers = [(b"Content-Type", b"application/json"), (b"Content-Length", str(len(content)).encode())]
        self.handle_reply({"type": "http.response.start", "status": status, "headers": headers})
        self.handle_reply({"type": "http.response.body", "body": content})


def install() -> None:
    """Serve HTTP with this request; call before daphne's server starts."""
    # daphne's factory builds every request from its module's ``WebRequest``, looked up by name.
    http_protocol.WebRequest = WebRequest


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
