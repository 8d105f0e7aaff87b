"""Overrides of autobahn (through daphne's WebSocket protocol): a shared text framed once, little held
per open socket, a closed socket freed at once, a close frame not lost to a timeout, a client that
stops reading dropped.

The live feed hands the same ``str`` object to every socket that follows a topic. daphne passes each
send to autobahn, which per socket encodes the text, builds and joins the frame, updates traffic
counters and formats a debug log call: with the ASGI reply hand-off, a third of daphne's CPU per
delivered frame at 1,000 sockets (py-spy; bench/results/live_feed.md). This protocol encodes and
frames a text once, for as long as the same object keeps coming, and writes those bytes to each
socket. Whatever that cannot express (a socket not open, binary data, compression, queued or
logged writes, masking, fragmentation, a message over the size limit) takes autobahn's own path.

A frame for a plain TCP connection with nothing waiting to go out is sent at once, as asyncio's own
transports do, rather than buffered for the reactor to write later: the first sockets of a fan-out
have their frame while the last are still being offered theirs, and the reactor's write bookkeeping
per socket goes. Whatever the kernel does not take, and every error, goes through Twisted's write,
which sends the rest when the socket drains or closes the connection as it would have.

Once a socket is open it lets go of what only its handshake needed (``_shed_handshake_state``):
with the inbox of ``conflict_monitor.overrides.daphne``, what took an open socket from 29 to 19 KB of RSS.

When the client does not answer a close within the closing handshake's timeout, autobahn aborts the
connection, which throws away whatever Twisted still holds for it; what waits is handed to the kernel
first (``onCloseHandshakeTimeout``), so the client still reads the close frame and its code.

A client that stops reading would otherwise make the server buffer every frame for it without end.
When more than ``WEBSOCKET_SEND_BUFFER_LIMIT`` bytes wait in the server for a socket (on top of what
the kernel buffers) at every send for ``WEBSOCKET_SLOW_CLIENT_SECONDS``, the next send drops the
connection instead: its close frame could only queue behind the backlog. The time matters as much as
the bytes: a resume replays up to the whole history at once, which a reading client drains in
moments. The client sees an abnormal close (1006) and reconnects like after any network failure,
resuming where it left off or resyncing.
"""

from __future__ import annotations

import logging
import struct
import time

from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
from prometheus_client import Counter
from twisted.internet import defer, tcp
from twisted.internet.main import CONNECTION_DONE
from twisted.web import http

from conflict_monitor.overrides import ATTRIBUTE, INSTANCE_ATTRIBUTE, METHOD, Member

_AUTOBAHN = "autobahn.twisted.websocket:WebSocketServerProtocol"
_DAPHNE = "daphne.ws_protocol:WebSocketProtocol"
_TCP = "twisted.internet.tcp:Server"
_RELEASED = "let go of once the socket is open"

RELIES_ON = [
    Member(
        "daphne.ws_protocol:WebSocketFactory",
        "protocol",
        ATTRIBUTE,
        why="replaced by `install()`: the protocol daphne's factory builds",
    ),
    Member(_DAPHNE, "serverSend", METHOD, "(content, binary)", why="overridden, called positionally"),
    Member(_DAPHNE, "onOpen", METHOD, "()", why="overridden: the handshake state goes once open"),
    Member(_DAPHNE, "request", INSTANCE_ATTRIBUTE, why="replaced by its path, all daphne reads of it once open"),
    Member(_DAPHNE, "clean_headers", INSTANCE_ATTRIBUTE, why=_RELEASED),
    Member(_DAPHNE, "client_addr", INSTANCE_ATTRIBUTE, why="logged when a slow client is dropped"),
    Member(_AUTOBAHN, "_connectionMade", METHOD, "()", why="overridden: a lighter `send_queue`"),
    Member(_AUTOBAHN, "send_queue", INSTANCE_ATTRIBUTE, why="replaced by a list (`append`, `popleft`, `len`)"),
    Member(_AUTOBAHN, "connectionLost", METHOD, "(reason)", why="overridden, called positionally"),
    Member(
        _AUTOBAHN,
        "onCloseHandshakeTimeout",
        METHOD,
        "()",
        why="overridden: what waits to be written goes out before autobahn's abort discards it",
    ),
    Member(_AUTOBAHN, "is_closed", INSTANCE_ATTRIBUTE, why="replaced once closed: autobahn's holds the protocol"),
    Member(
        _AUTOBAHN,
        "CONFIG_ATTRS",
        ATTRIBUTE,
        contains=("maxMessagePayloadSize", "maskServerFrames", "autoFragmentSize", "logFrames", "logOctets"),
        why="every option listed is read from the factory, not copied per socket; these decide the plain path",
    ),
    Member(_AUTOBAHN, "_perMessageCompress", INSTANCE_ATTRIBUTE, why="a compressed socket takes autobahn's path"),
    Member(_AUTOBAHN, "trackedTimings", INSTANCE_ATTRIBUTE, why="a socket tracking timings takes autobahn's path"),
    Member(_AUTOBAHN, "http_headers", INSTANCE_ATTRIBUTE, why=_RELEASED),
    Member(_AUTOBAHN, "http_request_data", INSTANCE_ATTRIBUTE, why=_RELEASED),
    Member(_AUTOBAHN, "http_status_line", INSTANCE_ATTRIBUTE, why=_RELEASED),
    Member(
        "twisted.web.http:HTTPChannel",
        "requests",
        INSTANCE_ATTRIBUTE,
        why="cleared once open: the channel and its request refer to each other",
    ),
    Member(_TCP, "dataBuffer", ATTRIBUTE, why="bytes waiting in the server: the slow-client check, `write_now`"),
    Member(_TCP, "offset", ATTRIBUTE, why="the part of `dataBuffer` already sent"),
    Member(_TCP, "_tempDataBuffer", INSTANCE_ATTRIBUTE, why="writes not yet joined into `dataBuffer`"),
    Member(_TCP, "_tempDataLen", INSTANCE_ATTRIBUTE, why="their length"),
    Member(_TCP, "_writeDisconnected", ATTRIBUTE, why="no direct send once the write side is shut"),
    Member(_TCP, "TLS", ATTRIBUTE, why="no direct send on a TLS connection"),
    Member(_TCP, "socket", INSTANCE_ATTRIBUTE, why="the direct `send`"),
    Member(_TCP, "doWrite", METHOD, "()", why="Twisted's own write of what waits, called before an abort"),
]

CHECKED_AGAINST = {"autobahn": "26.11.1", "txaio": "26.6.1", "daphne": "4.2.3", "Twisted": "26.10.0"}

MEASURED_GAIN = {
    "shared frames built once and sent at once (`serverSend`)": (
        "CPU per delivered message at 1,000 clients 30.5 µs (1.29× the reference), measured with the two rows "
        "below and daphne's inbox (docs/performance.md); autobahn's per-socket encode, framing, counters and log "
        "call had been a third of daphne's CPU per delivered frame at 1,000 sockets (py-spy)"
    ),
    "handshake state let go once open (`onOpen`)": (
        "29 → 18 KB RSS per open socket with daphne's inbox (docs/performance.md): the HTTP channel and request "
        "the socket was upgraded from (3 KB), the parsed headers and 29 per-socket option copies (2 KB)"
    ),
    "a closed socket freed at once (`connectionLost`)": (
        "churn soak, 2 minutes: RSS +4.7 % → +0.1 % (a1d0b4f; a +272 MB/h trend before); 1 hour: +1.1 % "
        "(docs/reliability.md)"
    ),
    "the close frame sent before a closing-handshake abort (`onCloseHandshakeTimeout`)": (
        "not measured (correctness: in a 600-socket connection flood with 4 busy processes beside it, 21 and 39 "
        "refused sockets of two runs lost their 4029 close frame to the abort and saw a reset; none in 9 runs "
        "after, one of which sent 41 such waiting close frames first)"
    ),
    "a client that stops reading dropped (`serverSend`)": (
        "a bound, not a speed-up: 100 clients that never read all dropped within 8.5–8.8 s, server RSS "
        "92 → 95–96 MB at the peak (docs/reliability.md, scenario 7)"
    ),
}

logger = logging.getLogger(__name__)

_FIN_TEXT = 0x81  # FIN bit set, opcode 1 (text)
# Used where no Django settings are configured (a bare ASGI app on this protocol).
DEFAULT_SEND_BUFFER_LIMIT = 1024 * 1024
DEFAULT_SLOW_CLIENT_SECONDS = 15.0

WS_DROPPED = Counter("conflict_monitor_ws_dropped", "Live-feed sockets the server dropped, per reason.", ["reason"])


def text_frame(payload: bytes) -> bytes:
    """An unmasked, unfragmented server text frame carrying ``payload`` (RFC 6455, section 5.2)."""
    length = len(payload)
    if length <= 125:
        header = struct.pack("!BB", _FIN_TEXT, length)
    elif length <= 0xFFFF:
        header = struct.pack("!BBH", _FIN_TEXT, 126, length)
    else:
        header = struct.pack("!BBQ", _FIN_TEXT, 127, length)
    return header + payload


class _LastFrame:
    """The text framed last and its wire bytes. Holding ``text`` keeps it alive, so an identity
    match can never be a new object at a recycled address."""

    __slots__ = ("text", "frame", "payload_length")

    def __init__(self) -> None:
        self.text: str | None = None
        self.frame = b""
        self.payload_length = 0

    def of(self, text: str) -> _LastFrame:
        if text is not self.text:
            payload = text.encode("utf-8")
            self.frame, self.payload_length, self.text = text_frame(payload), len(payload), text
        return self


_last = _LastFrame()


class _FromFactory:
    """A protocol option read from the factory, where autobahn would keep a copy per socket."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, protocol, owner=None):
        if protocol is None:
            return self
        return getattr(protocol.factory, self.name)


class _RequestPath:
    """What daphne reads of the handshake request once the socket is open: its path, for logging."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path


class _SendQueue(list):
    """autobahn's queue of chopped or synchronous writes, which the feed never makes: an empty list
    costs a tenth of the empty deque autobahn gives every socket."""

    __slots__ = ()

    def popleft(self):
        return self.pop(0)


# Handshake state autobahn and daphne keep on the protocol but no longer read once the socket is open.
_HANDSHAKE_ONLY = ("http_headers", "http_request_data", "http_status_line", "clean_headers")


def slow_client_limits() -> tuple[int, float]:
    """Bytes a socket may have waiting, and for how long, before it counts as not reading."""
    from django.conf import settings

    if settings.configured:
        return settings.WEBSOCKET_SEND_BUFFER_LIMIT, settings.WEBSOCKET_SLOW_CLIENT_SECONDS
    return DEFAULT_SEND_BUFFER_LIMIT, DEFAULT_SLOW_CLIENT_SECONDS


def buffered_bytes(transport) -> int:
    """Bytes written to a plain TCP connection that the kernel has not taken yet (0 for others)."""
    if type(transport) is not tcp.Server:
        return 0
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen


class PreframedWebSocketProtocol(WebSocketProtocol):
    # When a send first found more than the limit waiting; None while the socket keeps up.
    _behind_since: float | None = None

    def _connectionMade(self):
        super()._connectionMade()
        self.send_queue = _SendQueue()

    def onOpen(self):
        super().onOpen()
        self._shed_handshake_state()

    def _shed_handshake_state(self) -> None:
        """Let go of what only the handshake needed, in a right-sized attribute dict (a dict never
        shrinks when keys leave it). An open socket held about 6 KB of it (bench/connection_memory.py).

        - the HTTP channel the socket was upgraded from, still the transport's producer, and its request;
        - the parsed request headers (the application's scope keeps its own copy);
        - the per-socket copies of the factory's options, read through ``_FromFactory`` instead.
        """
        channel = getattr(self.transport, "producer", None)  # a TLS transport keeps it elsewhere
        if isinstance(channel, http.HTTPChannel):
            self.transport.unregisterProducer()
            # The channel and its request refer to each other: without this they wait for a full collection.
            channel.requests.clear()
        request = self.__dict__.get("request")
        if request is not None:
            self.request = _RequestPath(request.path)
        factory = self.factory
        self.__dict__ = {
            name: value
            for name, value in self.__dict__.items()
            if name not in _HANDSHAKE_ONLY
            and not (name in _FACTORY_OPTIONS and value is getattr(factory, name, _MISSING))
        }

    def connectionLost(self, reason=CONNECTION_DONE):
        super().connectionLost(reason)
        # autobahn resolves ``is_closed`` with the protocol itself. That cycle kept every closed
        # socket's objects (about 30 of them) until a collection of an older generation, rare with
        # the server's GC thresholds: under connection churn, megabytes of closed sockets waited.
        self.is_closed = defer.succeed(None)

    def onCloseHandshakeTimeout(self):
        # autobahn aborts the connection, and an abort discards what Twisted has not written yet. Under
        # load that can be the close frame itself: the reactor writes once per loop iteration, and
        # txaio's batched timer rounds the 1 s timeout down to a whole second, so it can fire within
        # milliseconds, before the long iteration that sent the frame ends. The client then saw a
        # reset instead of the close code.
        send_waiting(self.transport)
        super().onCloseHandshakeTimeout()

    def serverSend(self, content, binary=False):
        if self.state == self.STATE_OPEN and self._fell_behind():
            self._drop_slow_client()
            return None
        if binary or self.state != self.STATE_OPEN or not self._writes_plain_frames():
            return super().serverSend(content, binary)
        shared = _last.of(content)
        if 0 < self.maxMessagePayloadSize < shared.payload_length:
            return super().serverSend(content, binary)  # autobahn refuses it, as for any other send
        # autobahn's traffic statistics, which only its optional tracking reads, do not count these.
        write_now(self.transport, shared.frame)

    def _fell_behind(self) -> bool:
        waiting = buffered_bytes(self.transport)
        # Nothing waiting, the common case: no settings lookup.
        limit, seconds = slow_client_limits() if waiting else (0, 0.0)
        if waiting <= limit:
            if self._behind_since is not None:
                self._behind_since = None
            return False
        now = time.monotonic()
        if self._behind_since is None:
            self._behind_since = now
        return now - self._behind_since > seconds

    def _drop_slow_client(self) -> None:
        WS_DROPPED.labels(reason="slow_client").inc()
        logger.info("dropping a live-feed socket that stopped reading (%s)", self.client_addr)
        # Later sends find the socket closed and raise, as for any closed socket.
        self.dropConnection(abort=True)

    def _writes_plain_frames(self) -> bool:
        """autobahn would send a text message as one plain frame written straight to the transport."""
        return (
            self._perMessageCompress is None
            and not self.send_queue
            and not self.maskServerFrames
            and not self.autoFragmentSize
            and not self.logFrames
            and not self.logOctets
            and not self.trackedTimings
        )


def send_waiting(transport) -> None:
    """Hand the kernel what waits in the server for a plain TCP connection, as much as it takes now
    (Twisted's own non-blocking write); the rest waits as before."""
    if type(transport) is tcp.Server and transport.connected and buffered_bytes(transport):
        transport.doWrite()


def write_now(transport, data: bytes) -> None:
    """Send ``data`` right away when ``transport`` is a plain TCP connection with nothing buffered
    (so the bytes stay in order); hand Twisted whatever is left."""
    if (
        type(transport) is tcp.Server
        and not transport.TLS
        and transport.connected
        and not transport.disconnecting
        and not transport._writeDisconnected
        # A registered producer (the HTTP channel the socket was upgraded from) is paused only when
        # buffered data piles up; what is sent here is never buffered.
        and not transport._tempDataBuffer
        and transport.offset == len(transport.dataBuffer)
    ):
        try:
            sent = transport.socket.send(data)
        except OSError:
            sent = 0  # a full buffer waits for the reactor; a broken connection is Twisted's to close
        if sent == len(data):
            return
        data = data[sent:]
    transport.write(data)


_MISSING = object()
_FACTORY_OPTIONS = frozenset(PreframedWebSocketProtocol.CONFIG_ATTRS)
for _name in _FACTORY_OPTIONS:
    setattr(PreframedWebSocketProtocol, _name, _FromFactory(_name))


def install() -> None:
    """Serve WebSockets with this protocol; call before daphne's server starts."""
    WebSocketFactory.protocol = PreframedWebSocketProtocol
