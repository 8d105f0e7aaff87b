"""Requests as the client builds them: content-derived Idempotency-Keys, URLs, and the retry loop's steps."""

from __future__ import annotations

import json

import pytest
from conflict_monitor_client.errors import ConnectionFailed, InvalidRequest, ServerError
from conflict_monitor_client.retry import RetryPolicy
from conflict_monitor_client.wire import (
    Answer,
    ApiRequest,
    NoAnswer,
    Send,
    Sleep,
    api_base_url,
    canonical_json,
    exchange,
    request_headers,
)

from tests.clients.python.helpers import drive


def test_the_same_content_gives_the_same_key_whatever_the_key_order():
    first = ApiRequest("POST", "metrics", [{"source": "acled", "geocoding_attempts": 3, "timestamp": "t"}])
    second = ApiRequest("POST", "metrics", [{"timestamp": "t", "geocoding_attempts": 3, "source": "acled"}])
    assert first.idempotency_key == second.idempotency_key
    assert first.content == second.content == canonical_json(first.body)


@pytest.mark.parametrize(
    "other",
    [
        ApiRequest("POST", "metrics", [{"source": "acled", "geocoding_attempts": 4, "timestamp": "t"}]),
        ApiRequest("POST", "metrics", [{"source": "acled", "geocoding_attempts": 3, "timestamp": "u"}]),
        ApiRequest("POST", "runs", [{"source": "acled", "geocoding_attempts": 3, "timestamp": "t"}]),
    ],
    ids=["other-count", "other-time", "other-path"],
)
def test_different_content_or_path_gives_a_different_key(other):
    base = ApiRequest("POST", "metrics", [{"source": "acled", "geocoding_attempts": 3, "timestamp": "t"}])
    assert other.idempotency_key != base.idempotency_key


def test_the_key_fits_the_servers_limit_and_reads_carry_none():
    key = ApiRequest("POST", "runs/1/finish", {"status": "succeeded"}).idempotency_key
    assert key is not None and key.isprintable() and 0 < len(key) <= 255
    assert ApiRequest("GET", "runs/1").idempotency_key is None
    headers = request_headers(ApiRequest("GET", "runs/1"), token="cm_x", user_agent="t")
    assert "Idempotency-Key" not in headers and "Content-Type" not in headers
    assert headers["Authorization"] == "Token cm_x"


def test_bodies_refuse_nan_as_the_server_does():
    with pytest.raises(ValueError):
        ApiRequest("POST", "metrics", {"source": "a", "geocoding_attempts": float("nan")})


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000/api/v1/monitoring/"),
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000/api/v1/monitoring/"),
        ("https://ops.example.org/monitor", "https://ops.example.org/monitor/api/v1/monitoring/"),
        ("http://127.0.0.1:8000/api/v1/monitoring/", "http://127.0.0.1:8000/api/v1/monitoring/"),
        ("http://127.0.0.1:8000/api/v1/monitoring", "http://127.0.0.1:8000/api/v1/monitoring/"),
    ],
)
def test_the_api_base_is_found_from_a_server_url(url, base):
    assert api_base_url(url) == base


@pytest.mark.parametrize("url", ["127.0.0.1:8000", "ftp://host/", "http://"])
def test_a_url_that_is_not_http_is_refused(url):
    with pytest.raises(ValueError):
        api_base_url(url)


def _answer(status, body=None, **headers):
    return Answer(status=status, headers=headers, body=json.dumps(body or {}).encode())


def test_a_retried_request_is_the_same_request_with_the_same_key():
    request = ApiRequest("POST", "metrics", [{"source": "acled"}])
    policy = RetryPolicy(max_attempts=3, initial_delay=1.0)
    seen, result = drive(
        exchange(request, policy, rand=lambda: 0.0),
        [NoAnswer("reset"), _answer(503, {"error": "database_unavailable", "detail": "d"}), _answer(201, {"ok": 1})],
    )
    assert [type(step) for step in seen] == [Send, Sleep, Send, Sleep, Send]
    assert all(step.request is request for step in seen if isinstance(step, Send))
    assert [step.seconds for step in seen if isinstance(step, Sleep)] == [0.5, 1.0]
    assert result.data == {"ok": 1} and result.replayed is False


def test_a_replayed_answer_is_reported_as_such():
    seen, result = drive(
        exchange(ApiRequest("POST", "runs", {}), RetryPolicy()),
        [_answer(201, {"id": 1}, **{"idempotent-replayed": "true", "x-request-id": "abc"})],
    )
    assert (result.replayed, result.request_id) == (True, "abc")


def test_after_the_last_attempt_the_last_error_is_raised():
    _, error = drive(exchange(ApiRequest("GET", "runs/1"), RetryPolicy(max_attempts=2)), [NoAnswer("a"), NoAnswer("b")])
    assert isinstance(error, ConnectionFailed) and error.attempts == 2 and "b" in error.message
    _, error = drive(
        exchange(ApiRequest("GET", "runs/1"), RetryPolicy(max_attempts=2, initial_delay=0)),
        [_answer(502, {"error": "x", "detail": "y"}), _answer(504, {"error": "gateway", "detail": "late"})],
    )
    assert isinstance(error, ServerError) and (error.status, error.code) == (504, "gateway")


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 422, 500])
def test_other_errors_are_raised_at_once(status):
    seen, error = drive(
        exchange(ApiRequest("POST", "metrics", {}), RetryPolicy()), [_answer(status, {"error": "e", "detail": "d"})]
    )
    assert len(seen) == 1 and error.status == status
    assert isinstance(error, InvalidRequest) == (status == 400)
