"""Fixtures shared by every test package."""

from __future__ import annotations

import os

import pytest
from django.db import connection
from rest_framework.test import APIClient


@pytest.fixture(autouse=True)
def _require_real_backends(request) -> None:
    """Tests marked ``postgres``/``redis`` fail loudly when the real server is not what they run on."""
    if request.node.get_closest_marker("postgres"):
        request.getfixturevalue("db")
        assert connection.vendor == "postgresql", "set DATABASE_URL to a PostgreSQL server (make test does)"
    if request.node.get_closest_marker("redis"):
        assert os.environ.get("REDIS_URL"), "set REDIS_URL to a Redis server (make test does)"


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    """Cached results (anomaly findings, tickets) never leak from one test into the next."""
    from django.core.cache import cache

    from monitoring.anomaly.series import reset_detectors

    cache.clear()
    reset_detectors()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def ingest_key(db) -> str:
    from monitoring.services.tokens import create_ingest_token

    _, key = create_ingest_token(name="test-pipeline")
    return key


@pytest.fixture
def ingest_client(ingest_key) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {ingest_key}")
    return client


@pytest.fixture
def public_read(settings) -> None:
    """Status endpoints readable without credentials, as in the embedded demo."""
    settings.MONITORING_PUBLIC_READ = True
