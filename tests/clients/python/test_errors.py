"""The server's error answers become one typed hierarchy carrying status, code, message and fields; an
answer without the server's error body (a proxy's page) still does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from conflict_monitor_client import (
    APIError,
    AuthenticationFailed,
    ConflictMonitorError,
    IdempotencyKeyReused,
    InvalidRequest,
    Monitor,
    NotFound,
    RunAlreadyFinished,
    ServerError,
)
from conflict_monitor_client.errors import RateLimited, error_from_answer

from tests.clients.python.helpers import on_server


@on_server
def test_the_servers_refusals_are_raised_with_its_code_message_and_fields(server_url, server_key):
    with Monitor(server_url, server_key) as monitor:
        with pytest.raises(InvalidRequest) as invalid:
            monitor.start_run("acled", "scrape", started_at=datetime.now(UTC) + timedelta(hours=1))
        run = monitor.start_run("acled", "scrape")
        monitor.finish_run(run.id)
        with pytest.raises(RunAlreadyFinished) as finished:
            monitor.finish_run(run.id, status="failed", error="late")
        with pytest.raises(NotFound) as missing:
            monitor.get_run(run.id + 1000)
    assert (invalid.value.status, invalid.value.code, invalid.value.message) == (400, "invalid", "Invalid input.")
    assert invalid.value.fields == {"started_at": ["Lies more than 5 minutes in the future."]}
    assert "started_at: Lies more than 5 minutes in the future." in str(invalid.value)
    assert (finished.value.status, finished.value.code) == (409, "run_already_finished")
    assert finished.value.message == f"Run {run.id} already finished as succeeded."
    assert finished.value.request_id
    assert (missing.value.status, missing.value.code) == (404, "not_found")


def test_a_bad_token_is_an_authentication_error(server_url):
    with Monitor(server_url, "cm_000000000000_" + "x" * 43) as monitor, pytest.raises(AuthenticationFailed) as raised:
        monitor.start_run("acled", "scrape")
    assert (raised.value.status, raised.value.code) == (401, "authentication_failed")
    assert isinstance(raised.value, APIError) and isinstance(raised.value, ConflictMonitorError)


@on_server
def test_a_key_reused_with_another_body_is_its_own_error(server_url, server_key):
    # The client never reuses a key for other content; a hand-made request shows the answer it would get.
    url = f"{server_url}/api/v1/monitoring/metrics"
    headers = {"Authorization": f"Token {server_key}", "Idempotency-Key": "by-hand"}
    assert httpx.post(url, json={"source": "acled"}, headers=headers).status_code == 201
    answer = httpx.post(url, json={"source": "gdelt"}, headers=headers)
    error = error_from_answer(answer.status_code, answer.content, request_id=answer.headers.get("X-Request-ID"))
    assert isinstance(error, IdempotencyKeyReused) and (error.status, error.code) == (422, "idempotency_key_reused")


@pytest.mark.parametrize(
    ("status", "body", "error_type", "code"),
    [
        (502, b"<html>Bad Gateway</html>", ServerError, "http_502"),
        (503, b"", ServerError, "http_503"),
        (429, b'{"error": "throttled", "detail": "Slow down."}', RateLimited, "throttled"),
        (418, b'{"error": 1}', APIError, "http_418"),
    ],
)
def test_any_error_answer_becomes_an_error_of_the_hierarchy(status, body, error_type, code):
    error = error_from_answer(status, body, retry_after=3)
    assert type(error) is error_type and (error.status, error.code) == (status, code) and error.message
