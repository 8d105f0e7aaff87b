"""The launcher's WebSocket protocol frames a shared text once and every client still receives exactly
what was sent, in order: shared texts of every length class, texts of one socket's own, binary data."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from conflict_monitor.overrides.autobahn import text_frame
from tests.raw_websocket import open_unread

ROOT = Path(__file__).resolve().parents[3]

# An ASGI app that sends, to every socket, the same str objects (one per frame-length class) between
# texts and bytes of that socket's own, then says which protocol class daphne used.
APP = r"""
import asyncio, gc, json, os
from daphne.ws_protocol import WebSocketFactory
from conflict_monitor.overrides import autobahn as preframed

# Only reference counting frees memory in this server: an object a cycle keeps stays, and a test sees it.
gc.disable()

# No Django settings here: the limit comes from the module default, set per server by the test.
preframed.DEFAULT_SEND_BUFFER_LIMIT = int(os.environ["WSAPP_SEND_BUFFER_LIMIT"])
preframed.DEFAULT_SLOW_CLIENT_SECONDS = 0.5

SHARED = ["s" * 5, "m" * 126, "\u00e9" * 40_000, "l" * 70_000]
BIG = "b" * 512_000


async def app(scope, receive, send):
    assert scope["type"] == "websocket"
    await receive()
    await send({"type": "websocket.accept"})
    own = scope["client"][1]
    if scope["path"] == "/inspect":
        # What an open socket's protocol still holds, read in the server process.
        (protocol,) = [
            obj for obj in gc.get_objects()
            if type(obj) is WebSocketFactory.protocol and obj.client_addr and obj.client_addr[1] == own
        ]
        await send({"type": "websocket.send", "text": json.dumps({
            "inbox": type(receive.__self__).__name__,
            "producer": repr(protocol.transport.producer),
            "keys": sorted(protocol.__dict__),
            "max_message": protocol.maxMessagePayloadSize,
            "factory_max_message": protocol.factory.maxMessagePayloadSize,
            "request_path": protocol.request.path,
        })})
    if scope["path"] == "/close-timed-out":
        (protocol,) = [
            obj for obj in gc.get_objects()
            if type(obj) is WebSocketFactory.protocol and obj.client_addr and obj.client_addr[1] == own
        ]
        await asyncio.sleep(0)  # the 101 response goes out: the reactor writes once per loop iteration
        # The closing handshake's timeout firing in the iteration that sent the close frame, as it can
        # under load: the frame still waits in the server when autobahn aborts the connection.
        await send({"type": "websocket.close", "code": 4029})
        protocol.onCloseHandshakeTimeout()
        return
    if scope["path"] == "/closed":
        # Closed sockets whose protocol is still in memory.
        closed = [
            obj for obj in gc.get_objects()
            if type(obj) is WebSocketFactory.protocol and obj.state == obj.STATE_CLOSED
        ]
        await send({"type": "websocket.send", "text": str(len(closed))})
    if scope["path"] == "/dropped":
        count = preframed.WS_DROPPED.labels(reason="slow_client")._value.get()
        await send({"type": "websocket.send", "text": str(int(count))})
    if scope["path"] == "/echo":
        while (message := await receive())["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": message["text"]})
        return
    if scope["path"] == "/flood":
        # 16 x 512 KB over 3.2 s to a client that does not read yet: the kernel buffers fill mid-frame.
        try:
            for number in range(16):
                await send({"type": "websocket.send", "text": BIG})
                await send({"type": "websocket.send", "text": f"{number} {own}"})
                await asyncio.sleep(0.2)
        except Exception:
            return  # dropped as a slow client: the socket is closed
    for shared in SHARED:
        await send({"type": "websocket.send", "text": shared})
        await send({"type": "websocket.send", "text": f"own {own}"})
        await send({"type": "websocket.send", "bytes": shared.encode()[:300]})
    await send({"type": "websocket.send", "text": WebSocketFactory.protocol.__name__})
    while (await receive())["type"] != "websocket.disconnect":
        pass
"""


def expected_messages(own: int) -> list[str | bytes]:
    shared = ["s" * 5, "m" * 126, "\u00e9" * 40_000, "l" * 70_000]
    out: list[str | bytes] = []
    for text in shared:
        out += [text, f"own {own}", text.encode()[:300]]
    return [*out, "PreframedWebSocketProtocol"]


def start_server(folder: Path, send_buffer_limit: int):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = [sys.executable, "-m", "conflict_monitor.serve", "-b", "127.0.0.1", "-p", str(port), "wsapp:app"]
    env = {"PYTHONPATH": f"{folder}:{ROOT}", "PATH": "/usr/bin:/bin", "WSAPP_SEND_BUFFER_LIMIT": str(send_buffer_limit)}
    process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port
        except OSError:
            assert process.poll() is None, process.stdout.read().decode(errors="replace")
            time.sleep(0.1)
    process.kill()
    raise AssertionError("the server did not start listening")


@pytest.fixture(scope="module")
def app_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("wsapp")
    (folder / "wsapp.py").write_text(APP)
    return folder


@pytest.fixture(scope="module", params=[64 * 1024 * 1024])
def server_port(app_folder, request):
    """A server that lets a socket fall far behind (64 MiB) before dropping it."""
    process, port = start_server(app_folder, request.param)
    yield port
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def tight_server_port(app_folder):
    """A server that drops a socket once more than 64 KiB wait for it for 0.5 s."""
    process, port = start_server(app_folder, 64 * 1024)
    yield port
    process.terminate()
    process.wait(timeout=10)


def test_every_client_receives_shared_texts_own_texts_and_bytes_exactly_and_in_order(server_port):
    with ExitStack() as stack:
        url = f"ws://127.0.0.1:{server_port}/"
        clients = [stack.enter_context(connect(url, max_size=None, compression=None)) for _ in range(3)]
        for client in clients:
            own = client.socket.getsockname()[1]
            received = [client.recv(timeout=10) for _ in range(13)]
            assert received == expected_messages(own)


def read_frames(sock: socket.socket, count: int, frames: list | None = None) -> list[tuple[int, bytes]]:
    """``count`` unfragmented, unmasked server frames as (opcode, payload), appended to ``frames``."""
    stream = sock.makefile("rb")
    frames = [] if frames is None else frames
    for _ in range(count):
        first, second = stream.read(2)
        assert first & 0x80 and not second & 0x80, "fragmented or masked frame"
        length = second & 0x7F
        if length == 126:
            length = int.from_bytes(stream.read(2), "big")
        elif length == 127:
            length = int.from_bytes(stream.read(8), "big")
        frames.append((first & 0x0F, stream.read(length)))
    return frames


def test_a_client_that_reads_late_gets_every_frame_whole_and_in_order_once_it_reads(server_port):
    """The kernel buffers fill partway through a frame: Twisted sends the rest, and the frames behind
    it wait their turn instead of cutting in."""
    with open_unread(server_port, "/flood", receive_window=16_384) as sock:
        own = sock.getsockname()[1]
        time.sleep(3.5)  # 16 x 512 KB (8 MB, more than the kernel buffers) pile up against a 16 KB window
        received = read_frames(sock, 32)
    expected = []
    for number in range(16):
        expected += [(1, b"b" * 512_000), (1, f"{number} {own}".encode())]
    assert received == expected


def test_an_open_socket_keeps_no_handshake_state_and_reads_its_options_from_the_factory(server_port):
    with connect(f"ws://127.0.0.1:{server_port}/inspect", compression=None) as client:
        held = json.loads(client.recv(timeout=10))
    assert held["inbox"] == "Inbox"
    assert held["producer"] == "None"  # the HTTP channel it was upgraded from is gone
    assert not {"http_headers", "http_request_data", "maxMessagePayloadSize", "autoPingInterval"} & set(held["keys"])
    assert held["max_message"] == held["factory_max_message"] == 1024 * 1024
    assert held["request_path"] == "/inspect"


def test_a_closed_socket_is_freed_at_once_not_left_for_the_cycle_collector(server_port):
    """Under connection churn, closed sockets that wait for a full collection pile up by the megabyte
    (autobahn resolves ``is_closed`` with the protocol itself); the server here never collects."""
    for _ in range(10):
        with connect(f"ws://127.0.0.1:{server_port}/echo", compression=None) as client:
            client.send("ping")
            assert client.recv(timeout=10) == "ping"
        open_unread(server_port, "/echo", receive_window=65536).close()  # gone without a close frame
    time.sleep(1.5)  # daphne lets go of a finished application within its 1 s check
    with connect(f"ws://127.0.0.1:{server_port}/closed", compression=None) as client:
        assert client.recv(timeout=10) == "0"


def test_a_close_frame_still_waiting_when_the_closing_handshake_times_out_reaches_the_client(server_port):
    with (
        connect(f"ws://127.0.0.1:{server_port}/close-timed-out", compression=None) as client,
        pytest.raises(ConnectionClosed) as closed,
    ):
        client.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4029


def test_options_still_hold_on_an_open_socket_a_message_over_the_size_limit_ends_it(server_port):
    """As with daphne's own protocol, the connection is dropped (autobahn's failByDrop) instead of
    the message being echoed."""
    with connect(f"ws://127.0.0.1:{server_port}/echo", compression=None, max_size=None) as client:
        client.send("ping")
        assert client.recv(timeout=10) == "ping"
        client.send("x" * (1024 * 1024 + 1))
        with pytest.raises(ConnectionClosed) as closed:
            client.recv(timeout=10)
    assert closed.value.rcvd is None


def test_a_client_that_stops_reading_is_dropped_once_it_stays_past_the_limit(tight_server_port):
    """16 x 512 KB over 3.2 s against a 16 KB window, a 64 KiB limit and 0.5 s of grace: the server
    drops the socket instead of buffering megabytes for it; what arrived before is whole and in order.
    A burst to a client that reads (the /dropped probe's own frames, 150 KB at once) is not dropped."""
    frames: list[tuple[int, bytes]] = []
    own = None
    # The drop resets the connection: it may come before the client has even read the 101 response.
    with (
        pytest.raises((ConnectionError, ValueError, AssertionError)),
        open_unread(tight_server_port, "/flood", receive_window=16_384) as sock,
    ):
        own = sock.getsockname()[1]
        time.sleep(3.5)  # the whole flood goes out meanwhile
        read_frames(sock, 32, frames)
    expected = []
    for number in range(16):
        expected += [(1, b"b" * 512_000), (1, f"{number} {own}".encode())]
    assert frames == expected[: len(frames)]
    assert len(frames) < len(expected)
    with connect(f"ws://127.0.0.1:{tight_server_port}/dropped", compression=None) as client:
        assert client.recv(timeout=10) == "1"  # conflict_monitor_ws_dropped_total{reason="slow_client"}


@pytest.mark.parametrize(
    ("length", "header"),
    [
        (0, b"\x81\x00"),
        (125, b"\x81\x7d"),
        (126, b"\x81\x7e\x00\x7e"),
        (65_535, b"\x81\x7e\xff\xff"),
        (65_536, b"\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
    ],
)
def test_a_text_frame_has_fin_set_no_mask_and_the_shortest_length_encoding(length, header):
    payload = b"x" * length
    assert text_frame(payload) == header + payload
