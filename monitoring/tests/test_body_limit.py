"""API bodies over the limit are refused in ASGI, chunked ones included, before Django reads them."""

import json

import pytest
from asgiref.testing import ApplicationCommunicator

from conflict_monitor.asgi import application
from monitoring.models import DataQualityMetric

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]
METRIC = json.dumps({"source": "acled", "geocoding_attempts": 3, "geocoding_successes": 2}).encode()


async def _post(chunks: list[bytes], *, key: str = "", content_length: int | None = None) -> tuple[int, dict]:
    headers = [(b"content-type", b"application/json"), (b"host", b"localhost")]
    if key:
        headers.append((b"authorization", f"Token {key}".encode()))
    if content_length is not None:
        headers.append((b"content-length", str(content_length).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/monitoring/metrics",
        "raw_path": b"/api/v1/monitoring/metrics",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    app = ApplicationCommunicator(application, scope)
    for i, chunk in enumerate(chunks):
        await app.send_input({"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1})
    start = await app.receive_output(timeout=10)
    body = await app.receive_output(timeout=10)
    return start["status"], json.loads(body["body"])


@pytest.fixture
def small_limit(settings):
    settings.MONITORING_INGEST_MAX_BODY_BYTES = 1024
    settings.ALLOWED_HOSTS = ["localhost"]


async def test_a_declared_length_over_the_limit_is_refused_without_reading(small_limit):
    status, body = await _post([b""], content_length=10_000)
    assert (status, body["error"]) == (413, "payload_too_large")


async def test_a_chunked_body_over_the_limit_is_refused(small_limit):
    status, body = await _post([b"[" + b" " * 600, b" " * 600 + b"]"])
    assert (status, body["error"]) == (413, "payload_too_large")


async def test_a_chunked_body_under_the_limit_reaches_the_api_whole(small_limit):
    from channels.db import database_sync_to_async

    from monitoring.services.tokens import create_ingest_token

    _, key = await database_sync_to_async(create_ingest_token)(name="chunked")
    status, body = await _post([METRIC[:10], METRIC[10:]], key=key)
    assert (status, body["created"]) == (201, 1)
    assert await database_sync_to_async(DataQualityMetric.objects.count)() == 1
