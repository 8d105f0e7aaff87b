"""A client that performs the WebSocket handshake on a plain socket with a small receive window and
then reads only when the test says so: what a client that falls behind or stops reading looks like."""

from __future__ import annotations

import socket


def open_unread(port: int, path: str, *, receive_window: int) -> socket.socket:
    """The socket after the server's 101, with ``receive_window`` bytes of kernel receive buffer."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_window)  # before connect, or it is ignored
    sock.settimeout(30)
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock
