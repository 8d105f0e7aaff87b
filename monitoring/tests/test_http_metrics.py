"""Every HTTP response is counted by URL pattern and status class, and timed, through the whole ASGI
application: also those that never reach Django, and with labels that hostile paths cannot multiply."""

from __future__ import annotations

import pytest
from channels.testing import HttpCommunicator

from conflict_monitor.asgi import application
from monitoring import telemetry

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]
STATUS_ROUTE = "api/v1/monitoring/pipeline-status"


def responses(route: str, status: str) -> float:
    return telemetry.HTTP_RESPONSES.labels(route=route, status=status)._value.get()


def timed(route: str) -> float:
    for family in telemetry.HTTP_SECONDS.collect():
        for found in family.samples:
            if found.name.endswith("_count") and found.labels == {"route": route}:
                return found.value
    return 0.0


async def call(method: str, path: str, body: bytes = b"", headers: list | None = None) -> int:
    headers = [(b"host", b"testserver"), *(headers or [])]
    communicator = HttpCommunicator(application, method, path, body=body, headers=headers)
    return (await communicator.get_response(timeout=10))["status"]


async def test_a_response_is_counted_under_its_url_pattern_and_status_class_and_timed(settings):
    settings.MONITORING_PUBLIC_READ = True
    before, seconds = responses(STATUS_ROUTE, "2xx"), timed(STATUS_ROUTE)
    assert await call("GET", "/api/v1/monitoring/pipeline-status") == 200
    assert responses(STATUS_ROUTE, "2xx") == before + 1
    assert timed(STATUS_ROUTE) == seconds + 1


async def test_a_path_parameter_does_not_make_a_new_series():
    route = "api/v1/monitoring/alerts/<int:alert_id>"
    before = responses(route, "4xx")
    for alert_id in (1, 2, 99999):
        assert await call("GET", f"/api/v1/monitoring/alerts/{alert_id}") in (401, 404)
    assert responses(route, "4xx") == before + 3


async def test_unknown_paths_share_one_series():
    before = responses("unmatched", "4xx")
    for path in ("/nope", "/api/v1/monitoring/%00", "/api/v1/monitoring/" + "x" * 5000):
        assert await call("GET", path) == 404
    assert responses("unmatched", "4xx") == before + 3


async def test_a_body_refused_before_django_is_counted(settings):
    settings.MONITORING_INGEST_MAX_BODY_BYTES = 100
    route = "api/v1/monitoring/metrics"
    before = responses(route, "4xx")
    headers = [(b"content-type", b"application/json"), (b"content-length", b"5000")]
    assert await call("POST", "/api/v1/monitoring/metrics", body=b"x" * 5000, headers=headers) == 413
    assert responses(route, "4xx") == before + 1
