"""The retry policy: exponential backoff with jitter and a cap, Retry-After honoured, only no answer, 429 and
502/503/504 retried. The policy's numbers, then the client against a local server on a real socket that
answers 503/429/hang-ups before a 2xx."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from conflict_monitor_client import (
    ConnectionFailed,
    InvalidRequest,
    MetricsNotSent,
    Monitor,
    RateLimited,
    RetryPolicy,
    ServerError,
)
from conflict_monitor_client.retry import parse_retry_after

from tests.clients.python.stub_server import HangUp, Reply, stub_server
from tests.integration.cluster import free_port

STORED = Reply(201, {"created": 1, "ids": [1]})
FAST = RetryPolicy(max_attempts=4, initial_delay=0.1, max_delay=0.4)


def test_the_backoff_doubles_from_the_initial_delay_up_to_the_cap():
    policy = RetryPolicy(initial_delay=0.5, multiplier=2, max_delay=3)
    ceilings = [policy.backoff(n, rand=lambda: 1.0) for n in range(1, 7)]
    assert ceilings == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    assert policy.backoff(200, rand=lambda: 1.0) == 3.0  # no overflow however many retries


def test_the_jitter_keeps_each_wait_between_half_and_all_of_its_ceiling():
    policy = RetryPolicy(initial_delay=1.0, max_delay=30)
    assert policy.backoff(3, rand=lambda: 0.0) == 2.0
    assert policy.backoff(3, rand=lambda: 0.999) == pytest.approx(3.998)


def test_retry_after_replaces_the_backoff_and_one_too_long_is_not_waited_for():
    policy = RetryPolicy(max_attempts=5, max_retry_after=60)
    assert policy.delay(1, retry_after=17, rand=lambda: 0.0) == 17
    assert 17 <= policy.delay(1, retry_after=17) <= 18.7
    assert policy.delay(1, retry_after=61) is None
    assert policy.delay(5, retry_after=None) is None  # the fifth attempt was the last


def test_retry_after_is_read_as_seconds_or_as_an_http_date():
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    assert parse_retry_after("17") == 17
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now) == 30
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now=now) == 0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None and parse_retry_after("-3") is None


@pytest.mark.parametrize("settings", [{"max_attempts": 0}, {"initial_delay": -1}, {"multiplier": 0.5}])
def test_a_policy_that_could_not_work_is_refused(settings):
    with pytest.raises(ValueError):
        RetryPolicy(**settings)


def _report(url: str, policy: RetryPolicy = FAST) -> None:
    with Monitor(url, "cm_test", retry=policy, rand=lambda: 0.0) as monitor:
        monitor.report("acled", geocoding_attempts=10, geocoding_successes=9)


@pytest.mark.parametrize("status", [502, 503, 504])
def test_a_gateway_or_unavailable_answer_is_retried_with_the_same_body_and_key_after_a_backoff(status):
    unavailable = Reply(status, {"error": "database_unavailable", "detail": "Retry shortly."})
    with stub_server([unavailable, unavailable, STORED]) as stub:
        _report(stub.url)
    assert len(stub.received) == 3
    assert len({request.headers["Idempotency-Key"] for request in stub.received}) == 1
    assert len({request.body for request in stub.received}) == 1
    # rand 0: the lower bounds of the jitter, 0.05 then 0.1 s.
    first, second = stub.waits()
    assert 0.05 <= first < 0.05 + 0.5 and 0.1 <= second < 0.1 + 0.5


def test_a_429_waits_the_servers_retry_after():
    throttled = Reply(429, {"error": "throttled", "detail": "Expected available in 1 second."}, {"Retry-After": "1"})
    with stub_server([throttled, STORED]) as stub:
        _report(stub.url)
    assert len(stub.received) == 2
    assert stub.waits()[0] >= 1.0


def test_a_retry_after_beyond_the_limit_raises_at_once_with_it():
    throttled = Reply(429, {"error": "throttled", "detail": "Come back in an hour."}, {"Retry-After": "3600"})
    with stub_server([throttled], then=STORED) as stub, pytest.raises(MetricsNotSent) as raised:
        _report(stub.url)
    assert len(stub.received) == 1
    cause = raised.value.__cause__
    assert isinstance(cause, RateLimited) and cause.retry_after == 3600 and cause.message == "Come back in an hour."


def test_a_lost_connection_is_retried():
    with stub_server([HangUp(), HangUp(), STORED]) as stub:
        _report(stub.url)
    assert len(stub.received) == 3


@pytest.mark.parametrize(
    ("reply", "error_type"),
    [
        (Reply(400, {"error": "invalid", "detail": "Invalid input.", "fields": {"source": ["Bad."]}}), InvalidRequest),
        (Reply(500, {"error": "server_error", "detail": "Internal server error."}), ServerError),
    ],
    ids=["400", "500"],
)
def test_other_errors_are_not_retried(reply, error_type):
    with stub_server([reply], then=STORED) as stub, pytest.raises(MetricsNotSent) as raised:
        _report(stub.url)
    assert len(stub.received) == 1
    assert isinstance(raised.value.__cause__, error_type)
    assert raised.value.status == reply.status and raised.value.code == reply.body["error"]


def test_the_attempts_are_capped_and_the_last_error_is_raised_even_without_the_servers_error_body():
    proxy_page = Reply(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>")
    with stub_server([], then=proxy_page) as stub, pytest.raises(MetricsNotSent) as raised:
        _report(stub.url)
    assert len(stub.received) == FAST.max_attempts
    cause = raised.value.__cause__
    assert isinstance(cause, ServerError) and cause.code == "http_502" and "502 Bad Gateway" in cause.message


def test_no_server_at_all_fails_after_the_attempts_with_a_connection_error():
    started = time.monotonic()
    with pytest.raises(MetricsNotSent) as raised:
        _report(f"http://127.0.0.1:{free_port()}")
    cause = raised.value.__cause__
    assert isinstance(cause, ConnectionFailed) and cause.attempts == FAST.max_attempts and cause.status is None
    # Three waits of 0.05, 0.1 and 0.2 s (rand 0): backoff happened, and it stayed short.
    assert 0.35 <= time.monotonic() - started < 5
