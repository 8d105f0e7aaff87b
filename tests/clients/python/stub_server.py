"""A local HTTP server on a real socket that answers from a script: a fixed reply, a hang-up (the
connection closed without an answer), or the request forwarded to a real server (its answer passed on,
or dropped after the server did the work: a lost answer). It records every request it receives."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = field(default_factory=dict)  # JSON-able, or bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HangUp:
    """Close the connection without answering."""


@dataclass(frozen=True)
class Forward:
    """Pass the request to the upstream server; with ``drop``, close without passing its answer on."""

    drop: bool = False


Action = Reply | HangUp | Forward


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic()

    def json(self) -> Any:
        return json.loads(self.body)


class StubServer:
    """``script`` is consumed one action per request; then ``then`` answers every request."""

    def __init__(self, script: list[Action], *, then: Action = HangUp(), upstream: int | None = None) -> None:
        self._script = list(script)
        self._then = then
        self._upstream = upstream
        self._lock = threading.Lock()
        self.received: list[Received] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                action = stub._record(self.command, self.path, dict(self.headers.items()), body)
                if isinstance(action, Forward):
                    status, headers, answer = stub._forward(self.command, self.path, dict(self.headers.items()), body)
                    if action.drop:
                        self.close_connection = True
                        return
                    self._answer(status, headers, answer)
                elif isinstance(action, Reply):
                    answer = action.body if isinstance(action.body, bytes) else json.dumps(action.body).encode()
                    content_type = "text/html" if isinstance(action.body, bytes) else "application/json"
                    self._answer(action.status, {"Content-Type": content_type, **action.headers}, answer)
                else:
                    self.close_connection = True

            def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in ("content-length", "connection", "transfer-encoding", "date", "server"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def _record(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Action:
        with self._lock:
            self.received.append(Received(method, path, headers, body, time.monotonic()))
            return self._script.pop(0) if self._script else self._then

    def _forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict, bytes]:
        assert self._upstream is not None, "Forward needs an upstream port"
        connection = http.client.HTTPConnection("127.0.0.1", self._upstream, timeout=30)
        try:
            connection.request(method, path, body=body or None, headers=headers)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def waits(self) -> list[float]:
        """Seconds between consecutive requests."""
        return [later.at - earlier.at for earlier, later in zip(self.received, self.received[1:], strict=False)]


@contextmanager
def stub_server(script: list[Action], *, then: Action = HangUp(), upstream: int | None = None) -> Iterator[StubServer]:
    stub = StubServer(script, then=then, upstream=upstream)
    thread = threading.Thread(target=stub._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        stub._server.shutdown()
        stub._server.server_close()
        thread.join(5)
