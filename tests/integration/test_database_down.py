"""A real server whose PostgreSQL is unreachable answers with JSON 503s that name the database, never a 500."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.integration.cluster import running_cluster

pytestmark = pytest.mark.redis
NOWHERE = "postgres://postgres@127.0.0.1:1/conflict_monitor"  # a port nobody listens on


def call(port: int, path: str, *, body: dict | None = None, headers: dict | None = None) -> tuple[int, dict, dict]:
    request = urllib.request.Request(  # noqa: S310 (http://127.0.0.1 only)
        f"http://127.0.0.1:{port}{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310
            return response.status, dict(response.headers), json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.load(error)


@pytest.fixture(scope="module")
def server_without_database(tmp_path_factory):
    with running_cluster(
        logs=tmp_path_factory.mktemp("db-down"),
        servers=("a",),
        broadcasters=0,
        DATABASE_URL=NOWHERE,
        DATABASE_POOL_TIMEOUT="1",
    ) as cluster:
        yield cluster.port("a")


def test_health_still_answers(server_without_database):
    status, _, body = call(server_without_database, "/api/v1/monitoring/health")
    assert (status, body) == (200, {"status": "ok"})


def test_readiness_names_the_database(server_without_database):
    status, _, body = call(server_without_database, "/api/v1/monitoring/ready")
    assert status == 503
    assert body["status"] == "not_ready"
    assert body["checks"] == {"database": "failed", "channel_layer": "ok"}
    assert "database" in body["errors"]


def test_the_status_endpoint_asks_to_retry(server_without_database):
    status, headers, body = call(server_without_database, "/api/v1/monitoring/pipeline-status")
    assert status == 503
    assert body["error"] == "database_unavailable"
    assert headers["Retry-After"] == "5"


def test_ingest_asks_to_retry_instead_of_losing_the_batch_silently(server_without_database):
    status, headers, body = call(
        server_without_database,
        "/api/v1/monitoring/metrics",
        body={"source": "acled", "geocoding_attempts": 1, "geocoding_successes": 1},
        headers={"Authorization": "Token cm_0123456789ab_" + "x" * 43},  # well-formed: only the database can judge it
    )
    assert status == 503, body
    assert body["error"] == "database_unavailable"
    assert "Retry-After" in headers


def test_the_dashboard_still_loads_for_a_browser_with_a_session(server_without_database):
    """Sessions are stored in the database; the page must load (signed out) and let the API report the outage."""
    request = urllib.request.Request(  # noqa: S310 (http://127.0.0.1 only)
        f"http://127.0.0.1:{server_without_database}/",
        headers={"Cookie": "sessionid=0123456789abcdefghijklmnopqrstuv"},
    )
    with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310
        page = response.read().decode()
        assert response.status == 200
    assert 'data-testid="login-link"' in page
    assert '"authenticated": false' in page
