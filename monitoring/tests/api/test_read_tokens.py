"""Read tokens: they read (the API's GETs while public read is off, a feed ticket) and never write: every
write endpoint answers a read token 403 ``forbidden`` with the common error body, stores nothing and counts
nothing against the ingest rate; their reads and tickets are limited per token in the user scope."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from monitoring.models import DataQualityMetric, PipelineRun
from monitoring.services.tokens import create_ingest_token, create_read_token
from monitoring.tests.api.test_throttling import assert_throttled, clock, rates  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db
API = "/api/v1/monitoring/"
RUN_EVENT = {
    "eventType": "START",
    "eventTime": "2026-12-07T12:00:00.000Z",
    "run": {"runId": "0192e0d5-38e1-7c2b-9a44-4b8d8f4c2d11"},
    "job": {"namespace": "acled", "name": "scrape"},
    "producer": "https://example.com/producer",
    "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
}


def _client(key: str, scheme: str = "Token") -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{scheme} {key}")
    return client


@pytest.fixture
def reader() -> APIClient:
    return _client(create_read_token(name="follower")[1])


@pytest.fixture
def run_id() -> int:
    _, key = create_ingest_token(name="pipeline")
    return _client(key).post(API + "runs", {"source": "acled", "stage": "scrape"}, format="json").json()["id"]


def test_a_read_key_is_told_apart_from_an_ingest_key_by_its_prefix():
    assert create_read_token(name="reader")[1].startswith("cmr_")
    assert create_ingest_token(name="writer")[1].startswith("cm_")


def test_every_write_endpoint_refuses_a_read_token_with_403_and_the_common_body(reader, run_id):
    writes = [
        (API + "metrics", {"source": "acled", "geocoding_attempts": 1}),
        (API + "runs", {"source": "acled", "stage": "scrape"}),
        (f"{API}runs/{run_id}/finish", {"status": "succeeded"}),
        (API + "openlineage", RUN_EVENT),
    ]
    for url, body in writes:
        response = reader.post(url, body, format="json")
        assert response.status_code == 403, url
        assert response.json() == {"error": "forbidden", "detail": response.json()["detail"]}
        assert "read token cannot write" in response.json()["detail"]
    assert DataQualityMetric.objects.count() == 0
    assert list(PipelineRun.objects.values_list("status", flat=True)) == ["running"]


def test_the_openlineage_bearer_header_refuses_a_read_key_too():
    key = create_read_token(name="follower")[1]
    response = _client(key, "Bearer").post(API + "openlineage", RUN_EVENT, format="json")
    assert (response.status_code, response.json()["error"]) == (403, "forbidden")


def test_a_read_token_reads_the_private_api(reader, settings):
    settings.MONITORING_PUBLIC_READ = False
    assert APIClient().get(API + "pipeline-status").status_code == 401
    assert reader.get(API + "pipeline-status").status_code == 200
    assert reader.get(API + "runs").status_code == 200


def test_a_read_tokens_reads_and_tickets_count_per_token_in_the_user_scope(rates, clock, reader):  # noqa: F811
    rates(user="2/min", ingest="1/min")
    assert reader.get(API + "runs").status_code == 200
    assert reader.post(API + "ws-ticket").status_code == 201
    assert_throttled(reader.post(API + "ws-ticket"))
    # Refused writes count nowhere: the ingest scope's one request is still there for the pipeline.
    assert reader.post(API + "metrics", {"source": "acled"}, format="json").status_code == 403
    _, key = create_ingest_token(name="pipeline")
    assert _client(key).post(API + "metrics", {"source": "acled"}, format="json").status_code == 201
