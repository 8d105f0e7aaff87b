"""The WebSocket access log through the whole ASGI application: a record when a socket opens and when it
closes (a refused socket: the close only), with the socket's id on every record logged while it is
handled; no query string (a ticket) is logged."""

from __future__ import annotations

import pytest
from channels.testing import WebsocketCommunicator

from conflict_monitor.asgi import application
from monitoring import events, logs

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("feed_backend")]
FEED = "/ws/monitoring/pipeline-status"


async def open_feed(headers: list | None = None, client=("192.0.2.44", 40000)) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, FEED + "?ticket=query-secret-2", headers=headers or [])
    communicator.scope["client"] = client
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    return communicator


async def test_a_socket_gets_an_open_and_a_close_record(collected):
    feed = await open_feed(headers=[(b"x-request-id", b"socket-1")])
    await feed.receive_from(timeout=3)  # the snapshot
    [opened] = collected.access("websocket_open")
    assert {key: opened[key] for key in ("request_id", "path", "client")} == {
        "request_id": "socket-1",
        "path": FEED,
        "client": "192.0.2.44",
    }
    assert collected.access("websocket_close") == []
    await feed.disconnect(code=1001)
    [closed] = collected.access("websocket_close")
    assert {key: closed[key] for key in ("request_id", "path", "code", "client")} == {
        "request_id": "socket-1",
        "path": FEED,
        "code": 1001,
        "client": "192.0.2.44",
    }
    assert closed["duration_ms"] > 0
    written = "\n".join(logs.JsonFormatter().format(r) for r in collected.records)
    assert "query-secret-2" not in written and "ticket" not in written


async def test_a_refused_socket_gets_a_close_record_only(settings, collected):
    settings.MONITORING_PUBLIC_READ = False
    communicator = WebsocketCommunicator(application, FEED)
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    output = await communicator.receive_output(timeout=3)
    assert output == {"type": "websocket.close", "code": events.CLOSE_UNAUTHENTICATED}
    await communicator.disconnect(code=events.CLOSE_UNAUTHENTICATED)
    assert collected.access("websocket_open") == []
    [closed] = collected.access("websocket_close")
    assert closed["code"] == events.CLOSE_UNAUTHENTICATED and len(closed["request_id"]) == 32


async def test_records_logged_while_a_socket_is_handled_carry_its_id(monkeypatch, collected):
    class Unavailable:
        async def acquire(self, *, ip: str):
            raise ConnectionError("no Redis")

        async def release(self, *, ip: str) -> None:
            pass

    monkeypatch.setattr("monitoring.feed.admission.get_connection_registry", lambda: Unavailable())
    feed = await open_feed(headers=[(b"x-request-id", b"socket-2")])
    await feed.receive_from(timeout=3)
    [warning] = [record for record in collected.records if record.name == "monitoring.feed.admission"]
    assert warning.request_id == "socket-2"
    await feed.disconnect()
