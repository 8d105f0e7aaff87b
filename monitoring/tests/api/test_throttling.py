"""Rate limits: each scope answers 429 with Retry-After and the common error body once its limit is
used up; ingest is counted per token, operators per user, anonymous callers per address (never a
client's own X-Forwarded-For); health, readiness and /metrics are never limited; the counts are shared
and exact across concurrent requests on Redis; a cache that is down lets requests through."""

from __future__ import annotations

import os
import re
import threading
import uuid
from types import SimpleNamespace

import pytest
import redis
from django.contrib.auth.models import AnonymousUser
from rest_framework.exceptions import Throttled
from rest_framework.test import APIClient

from monitoring.api import throttling
from monitoring.api.exceptions import json_exception_handler
from monitoring.services.tokens import create_ingest_token

pytestmark = pytest.mark.django_db
API = "/api/v1/monitoring/"
METRIC = {"source": "acled", "geocoding_attempts": 5, "geocoding_successes": 4}
DETAIL = re.compile(r"Request was throttled\. Expected available in \d+ seconds?\.")


@pytest.fixture
def rates(settings):
    """Set the limits of this test: DRF's api_settings follow the setting, the throttles read them."""

    def set_rates(**scopes: str | None) -> None:
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {"ingest": None, "user": None, "anon": None, **scopes},
        }

    return set_rates


@pytest.fixture
def clock(monkeypatch):
    """The throttles' clock, at the start of a minute; ``clock.now`` moves it."""
    state = SimpleNamespace(now=1_800_000_000.0)  # a multiple of 60 and of 3600
    monkeypatch.setattr(throttling.WindowThrottle, "timer", staticmethod(lambda: state.now))
    return state


def token_client(**extra) -> APIClient:
    _, key = create_ingest_token(name=f"pipeline-{uuid.uuid4().hex[:8]}")
    client = APIClient(**extra)
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def ingest(client: APIClient, **extra):
    return client.post(API + "metrics", METRIC, format="json", **extra)


def assert_throttled(response, *, retry_after: int | None = None) -> None:
    assert response.status_code == 429, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error", "detail"} and body["error"] == "throttled"
    assert DETAIL.fullmatch(body["detail"]), body["detail"]
    waited = int(response["Retry-After"])
    assert 1 <= waited <= 60
    assert str(waited) in body["detail"]
    if retry_after is not None:
        assert waited == retry_after


# --- ingest: per token --------------------------------------------------------------------------
def test_ingest_is_limited_per_token_whatever_address_it_comes_from(rates, clock):
    rates(ingest="3/min")
    pipeline = token_client()
    assert [ingest(pipeline).status_code for _ in range(3)] == [201, 201, 201]
    clock.now += 15
    assert_throttled(ingest(pipeline), retry_after=45)
    assert_throttled(ingest(pipeline, REMOTE_ADDR="198.51.100.1"))  # a new address changes nothing
    assert ingest(token_client()).status_code == 201  # another token has its own count
    clock.now += 45  # the next minute
    assert ingest(pipeline).status_code == 201


def test_every_ingest_write_counts_and_a_tokens_reads_do_not(rates, clock, public_read):
    rates(ingest="2/min")
    pipeline = token_client()
    run = pipeline.post(API + "runs", {"source": "acled", "stage": "scrape"}, format="json")
    assert run.status_code == 201
    assert (
        pipeline.post(f"{API}runs/{run.json()['id']}/finish", {"status": "succeeded"}, format="json").status_code == 200
    )
    assert_throttled(ingest(pipeline))
    assert_throttled(pipeline.post(API + "runs", {"source": "acled", "stage": "scrape"}, format="json"))
    # Reads with the token count in the user scope (unlimited here), not against its writes.
    assert pipeline.get(API + "runs").status_code == 200


def test_a_tokens_reads_are_limited_per_token_in_the_user_scope(rates, clock, public_read):
    rates(user="2/min")
    pipeline = token_client()
    assert [pipeline.get(API + "runs").status_code for _ in range(2)] == [200, 200]
    assert_throttled(pipeline.get(API + "runs"))
    assert ingest(pipeline).status_code == 201  # writes are the ingest scope's
    assert token_client().get(API + "runs").status_code == 200


# --- anonymous: per address ---------------------------------------------------------------------
def test_anonymous_reads_are_limited_per_address(rates, clock, public_read):
    rates(anon="2/min")
    client = APIClient()
    assert [client.get(API + "pipeline-status").status_code for _ in range(2)] == [200, 200]
    assert_throttled(client.get(API + "alerts"))  # one count for every endpoint
    assert client.get(API + "pipeline-status", REMOTE_ADDR="198.51.100.2").status_code == 200


def test_a_clients_own_x_forwarded_for_does_not_make_it_a_new_client(rates, clock, public_read):
    """DRF's get_ident would key on X-Forwarded-For while NUM_PROXIES is unset; the limits use the
    scope's address, which only daphne's --proxy-headers sets from the proxy's header."""
    rates(anon="2/min")
    client = APIClient()
    statuses = [client.get(API + "runs", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code for n in range(1, 5)]
    assert statuses == [200, 200, 429, 429]


def test_an_ipv6_client_is_counted_per_64(rates, clock, public_read):
    rates(anon="1/min")
    client = APIClient()
    assert client.get(API + "runs", REMOTE_ADDR="2001:db8:1:2::1").status_code == 200
    assert client.get(API + "runs", REMOTE_ADDR="2001:db8:1:2:ffff::9").status_code == 429
    assert client.get(API + "runs", REMOTE_ADDR="2001:db8:1:3::1").status_code == 200
    # An IPv4 address mapped into IPv6 is that IPv4 client.
    assert client.get(API + "runs", REMOTE_ADDR="192.0.2.10").status_code == 200
    assert client.get(API + "runs", REMOTE_ADDR="::ffff:192.0.2.10").status_code == 429


def test_anonymous_callers_refused_by_private_reads_are_not_counted(rates, clock, settings):
    settings.MONITORING_PUBLIC_READ = False
    rates(anon="1/min")
    client = APIClient()
    assert [client.get(API + "runs").status_code for _ in range(3)] == [401, 401, 401]


# --- operators: per user ------------------------------------------------------------------------
def test_an_operator_is_limited_per_user_for_reads_and_writes(rates, clock, django_user_model):
    rates(user="3/min")
    first, second = APIClient(), APIClient()
    first.force_login(django_user_model.objects.create_user("first", password="pw"))
    second.force_login(django_user_model.objects.create_user("second", password="pw"))
    assert first.get(API + "alerts").status_code == 200
    assert first.post(API + "ws-ticket").status_code == 201
    assert first.get(API + "silences").status_code == 200
    assert_throttled(first.get(API + "alerts"))
    assert_throttled(first.post(API + "ws-ticket"))
    assert second.get(API + "alerts").status_code == 200
    # The same operator from another address is the same operator.
    assert_throttled(first.get(API + "alerts", REMOTE_ADDR="198.51.100.3"))


# --- never limited ------------------------------------------------------------------------------
def test_health_readiness_and_metrics_are_never_limited(rates, clock, public_read):
    rates(anon="1/min", user="1/min", ingest="1/min")
    client = APIClient()
    for _ in range(5):
        assert client.get(API + "health").status_code == 200
        assert client.get(API + "ready").status_code in (200, 503)
        assert client.get("/metrics").status_code == 200
    assert client.get(API + "runs").status_code == 200  # the anonymous count was untouched
    assert client.get(API + "runs").status_code == 429


def test_a_scope_that_is_off_is_not_limited(rates, clock, public_read):
    rates(anon=None)
    client = APIClient()
    assert {client.get(API + "runs").status_code for _ in range(30)} == {200}


def test_the_default_limits_are_the_documented_ones(settings):
    assert settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] == {
        "ingest": "1200/min",
        "user": "1200/min",
        "anon": "600/min",
    }
    assert settings.REST_FRAMEWORK.get("NUM_PROXIES") is None


def test_the_schema_documents_429_exactly_where_a_view_is_throttled():
    from monitoring.tests.api.test_schema import api_routes, committed_schema

    paths = committed_schema()["paths"]
    for path, view in api_routes():
        throttled = bool(view().get_throttles())
        for method, operation in paths[path].items():
            responses = operation["responses"]
            assert ("429" in responses) == throttled, f"{method.upper()} {path}"
            if throttled:
                assert "Retry-After" in responses["429"]["headers"], f"{method.upper()} {path}"
    assert not paths[API + "health"]["get"]["responses"].keys() & {"429"}


# --- the answer -----------------------------------------------------------------------------------
def test_the_exception_handler_gives_a_throttled_request_the_common_body_and_retry_after():
    response = json_exception_handler(Throttled(wait=3.2), {"request": None, "view": None})
    assert response.status_code == 429
    assert response.data == {"error": "throttled", "detail": "Request was throttled. Expected available in 4 seconds."}
    assert response["Retry-After"] == "4"


def test_retry_after_is_at_least_one_second(rates, clock, public_read):
    rates(anon="1/min")
    client = APIClient()
    client.get(API + "runs")
    clock.now += 59.9
    assert_throttled(client.get(API + "runs"), retry_after=1)


# --- the cache ----------------------------------------------------------------------------------
def test_a_cache_that_does_not_answer_lets_requests_through(rates, clock, public_read, monkeypatch, caplog):
    class Down:
        def incr(self, *args, **kwargs):
            raise ConnectionError("cache down")

        add = incr

    rates(anon="1/min")
    monkeypatch.setattr(throttling.WindowThrottle, "cache", Down())
    monkeypatch.setattr(throttling, "_last_warning", 0.0)
    client = APIClient()
    assert [client.get(API + "runs").status_code for _ in range(3)] == [200, 200, 200]
    warnings = [r for r in caplog.records if r.name == "monitoring.api.throttling"]
    assert len(warnings) == 1 and "not throttled" in warnings[0].getMessage()  # once, not per request


@pytest.mark.redis
def test_concurrent_requests_on_redis_are_counted_exactly(rates, clock, settings):
    """Many processes share one Redis count: concurrent increments lose nothing and let exactly the
    limit through (DRF's read-modify-write history would let more through)."""
    prefix = f"test-throttle-{uuid.uuid4().hex[:10]}"
    url = os.environ["REDIS_URL"]
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url, "KEY_PREFIX": prefix}
    }
    rates(anon="25/min")
    request = SimpleNamespace(META={"REMOTE_ADDR": "198.51.100.9"}, user=AnonymousUser(), auth=None, method="GET")
    allowed: list[bool] = []
    start = threading.Barrier(60)

    def one() -> None:
        throttle = throttling.AnonThrottle()
        start.wait()
        allowed.append(throttle.allow_request(request, None))

    try:
        threads = [threading.Thread(target=one) for _ in range(60)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert allowed.count(True) == 25 and allowed.count(False) == 35
        client = redis.Redis.from_url(url)
        [key] = list(client.scan_iter(f"{prefix}*"))
        assert 0 < client.ttl(key) <= 61  # expires after its window
    finally:
        client = redis.Redis.from_url(url)
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)
        client.close()
