"""A TCP proxy that loses a share of HTTP responses: the server did the work, the client never hears back.

One client connection carries one request (clients send ``Connection: close``). The proxy forwards the
request, reads the server's whole answer, then either passes it on or closes the client's socket without
a byte, which a client sees as a dropped connection and retries.
"""

from __future__ import annotations

import random
import socket
import threading
from dataclasses import dataclass, field


@dataclass
class LossyProxy:
    upstream: tuple[str, int]
    loss: float
    seed: int = 0
    port: int = 0
    dropped: int = 0
    forwarded: int = 0
    _rng: random.Random = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _listener: socket.socket | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def start(self) -> LossyProxy:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # stopped
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client, socket.create_connection(self.upstream, timeout=30) as server:
            threading.Thread(target=self._pipe, args=(client, server), daemon=True).start()
            answer = self._read_response(server)
            with self._lock:
                drop = self._rng.random() < self.loss
                if drop:
                    self.dropped += 1
                else:
                    self.forwarded += 1
            if not drop:
                client.sendall(answer)
            # shutdown, not just close: it wakes the pipe thread blocked in recv on the same socket, which
            # would otherwise keep the connection open (and the client waiting) after close.
            client.shutdown(socket.SHUT_RDWR)

    @staticmethod
    def _read_response(server: socket.socket) -> bytes:
        """One whole HTTP response (headers, then Content-Length bytes): servers may keep the socket open."""
        answer = bytearray()
        while b"\r\n\r\n" not in answer:
            chunk = server.recv(65536)
            if not chunk:
                return bytes(answer)
            answer += chunk
        head, _, body = bytes(answer).partition(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            None,
        )
        if length is None:  # no length: the server ends the body by closing
            while chunk := server.recv(65536):
                body += chunk
            return head + b"\r\n\r\n" + body
        while len(body) < length:
            chunk = server.recv(65536)
            if not chunk:
                break
            body += chunk
        return head + b"\r\n\r\n" + body

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass  # either side closed: the request is over
