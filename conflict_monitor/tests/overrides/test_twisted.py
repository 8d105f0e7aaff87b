"""The flushing reactor delivers every byte in order: small writes flushed together, a socket whose
kernel buffer fills handed to epoll until the peer reads, writes after a close attempt dropped
without breaking the other sockets. Run in a subprocess: a reactor is installed once per process."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

SERVER = r"""
import sys
from conflict_monitor.overrides.twisted import FlushingAsyncioReactor, install

reactor = install()
from twisted.internet import protocol
from twisted.internet import reactor as installed

assert installed is reactor and isinstance(installed, FlushingAsyncioReactor)
CHUNK = bytes(range(256)) * 64  # 16 KiB


class Sender(protocol.Protocol):
    def connectionMade(self):
        # 2,000 small writes in one loop iteration, then 32 MiB more than any socket buffer holds.
        for i in range(2000):
            self.transport.write(b"%08d" % i)
        for _ in range(2048):
            self.transport.write(CHUNK)
        self.transport.loseConnection()


class Factory(protocol.Factory):
    protocol = Sender


port = installed.listenTCP(0, Factory(), interface="127.0.0.1")
print(port.getHost().port, flush=True)
installed.callLater(60, installed.stop)
installed.run()
"""


def expected_stream() -> bytes:
    chunk = bytes(range(256)) * 64
    return b"".join(b"%08d" % i for i in range(2000)) + chunk * 2048


def read_all(port: int, *, pause: float) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
        time.sleep(pause)  # the server's writes back up meanwhile
        parts = []
        while data := client.recv(1 << 20):
            parts.append(data)
    return b"".join(parts)


@pytest.fixture
def server_port():
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        yield int(process.stdout.readline())
    finally:
        process.kill()
        _, errors = process.communicate(timeout=10)
        assert "Traceback" not in errors, errors


@pytest.mark.parametrize("pause", [0.0, 0.5], ids=["reading", "slow-reader"])
def test_every_byte_arrives_in_order_and_the_connection_closes_after_it(server_port, pause):
    received = read_all(server_port, pause=pause)
    expected = expected_stream()
    assert len(received) == len(expected)
    assert hashlib.sha256(received).digest() == hashlib.sha256(expected).digest()


def test_several_slow_readers_at_once_each_get_their_whole_stream(server_port):
    clients = [socket.create_connection(("127.0.0.1", server_port), timeout=30) for _ in range(4)]
    time.sleep(0.3)
    expected = hashlib.sha256(expected_stream()).digest()
    for client in clients:
        with client:
            parts = []
            while data := client.recv(1 << 20):
                parts.append(data)
        assert hashlib.sha256(b"".join(parts)).digest() == expected


FLUSH_ORDER = r"""
import asyncio, socket
from conflict_monitor.overrides.twisted import FlushingAsyncioReactor

loop = asyncio.new_event_loop()
reactor = FlushingAsyncioReactor(loop)
calls = []


class Writer:
    def __init__(self, name, on_write=None):
        self.name, self.on_write = name, on_write
        self.sock, self.peer = socket.socketpair()

    def fileno(self):
        return self.sock.fileno()

    def doWrite(self):
        calls.append(self.name)
        if self.on_write:
            self.on_write()
        reactor.removeWriter(self)  # everything written: what a finished transport does


b = Writer("b")
a = Writer("a", on_write=lambda: reactor.removeWriter(b))  # a's callbacks drop b mid-flush
c = Writer("c")
for writer in (a, b, c):
    reactor.addWriter(writer)
print(len(reactor.getWriters()))
loop.call_soon(loop.stop)
loop.run_forever()
print(",".join(calls), len(reactor.getWriters()))
"""


def test_one_flush_writes_each_pending_socket_once_in_write_order_and_skips_one_removed_meanwhile():
    out = subprocess.run([sys.executable, "-c", FLUSH_ORDER], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["3", "a,c", "0"], out.stderr
