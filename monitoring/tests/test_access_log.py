"""Access records and request ids through the whole ASGI application: one record per HTTP request with
its URL pattern (resolved once, for the metrics and the record alike), the request id echoed in
``X-Request-ID`` and on every record of the request (Django's own included). No query string or header
other than the request id is logged. (The WebSocket's records: feed/test_access.py.)"""

from __future__ import annotations

import json
import logging

import pytest
from channels.testing import HttpCommunicator

from conflict_monitor.asgi import application
from monitoring import http_metrics, logs

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]
STATUS_ROUTE = "api/v1/monitoring/pipeline-status"
FEED = "/ws/monitoring/pipeline-status"


async def call(method: str, path: str, *, headers: list | None = None, body: bytes = b"", client=None) -> dict:
    communicator = HttpCommunicator(
        application, method, path, body=body, headers=[(b"host", b"testserver"), *(headers or [])]
    )
    if client is not None:
        communicator.scope["client"] = client
    response = await communicator.get_response(timeout=10)
    await communicator.wait(timeout=5)
    return response


def header(response: dict, name: bytes) -> str | None:
    values = [value.decode() for key, value in response["headers"] if key.lower() == name]
    assert len(values) <= 1, values
    return values[0] if values else None


# --- HTTP ---------------------------------------------------------------------------------------
async def test_a_request_gets_one_access_record_with_its_route_status_duration_client_and_id(settings, collected):
    settings.MONITORING_PUBLIC_READ = True
    response = await call(
        "GET",
        "/api/v1/monitoring/pipeline-status?window_hours=24&ticket=query-secret-1",
        headers=[(b"x-request-id", b"client-chosen-1"), (b"authorization", b"Token header-secret-1")],
        client=("198.51.100.7", 50123),
    )
    assert response["status"] == 401  # the token is wrong: refused, and still logged
    assert header(response, b"x-request-id") == "client-chosen-1"
    [record] = collected.access()
    assert {key: record[key] for key in ("request_id", "method", "route", "status", "client")} == {
        "request_id": "client-chosen-1",
        "method": "GET",
        "route": STATUS_ROUTE,  # the pattern, not the path
        "status": response["status"],
        "client": "198.51.100.7",
    }
    assert isinstance(record["duration_ms"], float) and record["duration_ms"] > 0
    assert (record["level"], record["logger"]) == ("INFO", "monitoring.access")
    written = "\n".join(logs.JsonFormatter().format(r) for r in collected.records)
    for secret in ("query-secret-1", "header-secret-1", "window_hours", "ticket"):
        assert secret not in written


async def test_a_path_parameter_is_logged_as_its_pattern(collected):
    await call("GET", "/api/v1/monitoring/alerts/12345")
    [record] = collected.access()
    assert record["route"] == "api/v1/monitoring/alerts/<int:alert_id>"
    assert "12345" not in record["message"]


@pytest.mark.parametrize(
    "sent",
    [b"x" * 129, b"new\nline", b"", b"caf\xc3\xa9", b"\x00"],
    ids=["too-long", "newline", "empty", "non-ascii", "nul"],
)
async def test_an_insane_request_id_is_replaced_by_a_new_one(collected, sent):
    response = await call("GET", "/api/v1/monitoring/health", headers=[(b"x-request-id", sent)])
    echoed = header(response, b"x-request-id")
    assert len(echoed) == 32 and int(echoed, 16) >= 0
    [record] = collected.access()
    assert record["request_id"] == echoed


async def test_every_request_gets_its_own_id(collected):
    first = header(await call("GET", "/api/v1/monitoring/health"), b"x-request-id")
    second = header(await call("GET", "/api/v1/monitoring/health"), b"x-request-id")
    assert first != second
    assert [record["request_id"] for record in collected.access()] == [first, second]


async def test_the_route_is_resolved_once_per_request(monkeypatch, collected):
    resolved = []
    original = http_metrics.route_of

    def counting(path: str) -> str:
        resolved.append(path)
        return original(path)

    monkeypatch.setattr(http_metrics, "route_of", counting)
    await call("GET", "/api/v1/monitoring/health")
    assert resolved == ["/api/v1/monitoring/health"]
    assert collected.access()[0]["route"] == "api/v1/monitoring/health"


async def test_djangos_own_error_record_carries_the_request_id(settings, monkeypatch, collected):
    settings.MONITORING_PUBLIC_READ = True

    def broken(**kwargs):
        raise RuntimeError("the selector broke")

    monkeypatch.setattr("monitoring.api.views.pipeline_status", broken)
    response = await call("GET", "/api/v1/monitoring/pipeline-status", headers=[(b"x-request-id", b"failing-1")])
    assert response["status"] == 500 and header(response, b"x-request-id") == "failing-1"
    [error] = [record for record in collected.records if record.name == "django.request"]
    document = json.loads(logs.JsonFormatter().format(error))
    assert document["level"] == "ERROR" and document["request_id"] == "failing-1"
    assert "RuntimeError: the selector broke" in document["exc_info"]
    assert "request" not in document  # Django's request object is never written
    assert collected.access()[0]["status"] == 500


async def test_a_response_refused_before_django_is_logged_with_its_id(settings, collected):
    settings.MONITORING_INGEST_MAX_BODY_BYTES = 100
    headers = [(b"content-type", b"application/json"), (b"content-length", b"5000"), (b"x-request-id", b"big-1")]
    response = await call("POST", "/api/v1/monitoring/metrics", body=b"x" * 5000, headers=headers)
    assert response["status"] == 413 and header(response, b"x-request-id") == "big-1"
    [record] = collected.access()
    assert (record["request_id"], record["route"], record["status"]) == ("big-1", "api/v1/monitoring/metrics", 413)


async def test_no_request_id_outlives_its_request(collected):
    await call("GET", "/api/v1/monitoring/health", headers=[(b"x-request-id", b"scoped-1")])
    logging.getLogger("monitoring.probe").warning("after the request")
    assert not hasattr(collected.records[-1], "request_id")
