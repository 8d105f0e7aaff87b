"""The embedded broadcaster starts with the server (daphne's reactor, or ASGI lifespan), never only with
the first WebSocket; with Redis (embedded broadcaster off) a server starts none."""

import asyncio
import sys

import pytest

from monitoring import broadcaster


class FakeReactor:
    def __init__(self) -> None:
        self._asyncioEventloop = object()
        self.when_running: list[tuple] = []
        self.later: list[tuple] = []

    def callWhenRunning(self, *call):  # noqa: N802 (Twisted naming)
        self.when_running.append(call)

    def callLater(self, delay, function, *args):  # noqa: N802 (Twisted naming)
        self.later.append((delay, function, args))


@pytest.fixture
def reactor(monkeypatch):
    fake = FakeReactor()
    monkeypatch.setitem(sys.modules, "twisted.internet.reactor", fake)
    return fake


@pytest.fixture
def started(monkeypatch):
    calls = []
    monkeypatch.setattr(broadcaster, "ensure_embedded_broadcaster", lambda: calls.append("started"))
    return calls


def test_under_daphne_the_broadcaster_starts_from_the_reactors_first_loop_callback(settings, reactor, started):
    settings.WEBSOCKET_EMBEDDED_BROADCASTER = True
    broadcaster.start_embedded_broadcaster_with_server()
    ((call_later, delay, start),) = reactor.when_running
    assert (call_later, delay) == (reactor.callLater, 0)
    start()
    assert started == ["started"]


def test_with_redis_a_server_starts_no_broadcaster(settings, reactor, started):
    settings.WEBSOCKET_EMBEDDED_BROADCASTER = False
    broadcaster.start_embedded_broadcaster_with_server()
    assert reactor.when_running == []


@pytest.mark.asyncio
@pytest.mark.parametrize("embedded", [True, False])
async def test_asgi_lifespan_starts_the_embedded_broadcaster(settings, started, monkeypatch, embedded):
    settings.WEBSOCKET_EMBEDDED_BROADCASTER = embedded
    stopped = []

    async def stop():
        stopped.append(True)

    monkeypatch.setattr(broadcaster, "stop_embedded_broadcaster", stop)
    inbox: asyncio.Queue = asyncio.Queue()
    sent = []

    async def send(message):
        sent.append(message["type"])

    for kind in ("lifespan.startup", "lifespan.shutdown"):
        inbox.put_nowait({"type": kind})
    await broadcaster.lifespan_app({"type": "lifespan"}, inbox.get, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert started == (["started"] if embedded else [])
    assert stopped == [True]
