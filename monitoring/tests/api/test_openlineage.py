"""POST /api/v1/monitoring/openlineage: as OpenLineage's HTTP transports send (Bearer key, JSON, maybe gzip),
one event or a list, all or nothing, the common error body naming the problem."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from monitoring.api import openlineage as view
from monitoring.models import DataQualityMetric, IngestToken, PipelineRun
from monitoring.tests.openlineage.spec_examples import example, pipeline_counts, run_event

pytestmark = pytest.mark.django_db
URL = "/api/v1/monitoring/openlineage"


@pytest.fixture
def transport(ingest_key) -> APIClient:
    """A client sending what openlineage-python's HttpTransport sends with ``auth: {type: api_key}``."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {ingest_key}")
    return client


def post(client: APIClient, body: object, **headers):
    return client.post(URL, json.dumps(body), content_type="application/json", **headers)


def start_and_complete() -> list[dict]:
    run_id, now = str(uuid.uuid4()), timezone.now()
    return [
        run_event("START", run_id=run_id, at=now - timedelta(minutes=10)),
        run_event(
            "COMPLETE",
            run_id=run_id,
            at=now - timedelta(minutes=1),
            run_facets=pipeline_counts(geocoding_attempts=50, geocoding_successes=45),
            output_facets=example("facet_output_statistics"),
        ),
    ]


def test_one_event_per_request_with_a_bearer_key_as_the_transport_sends(transport):
    start, complete = start_and_complete()
    first = post(transport, start)
    assert first.status_code == 200
    body = first.json()
    assert {k: body[k] for k in ("received", "applied", "duplicates", "ignored")} == {
        "received": 1,
        "applied": 1,
        "duplicates": 0,
        "ignored": 0,
    }
    (result,) = body["results"]
    run = PipelineRun.objects.get()
    assert result == {
        "run_id": start["run"]["runId"],
        "event_type": "START",
        "outcome": "applied",
        "pipeline_run": run.pk,
        "source": "acled",
        "stage": "scrape",
        "detail": f"Run {run.pk} started.",
    }
    assert post(transport, complete).json()["applied"] == 1
    run.refresh_from_db()
    assert (run.status, run.items_out) == ("succeeded", 2000)
    assert DataQualityMetric.objects.get().metric_type == "openlineage"


def test_a_list_and_its_retry(transport):
    events = start_and_complete()
    assert post(transport, events).json()["applied"] == 2
    again = post(transport, events).json()
    assert (again["applied"], again["duplicates"]) == (0, 2)
    assert PipelineRun.objects.count() == 1 and DataQualityMetric.objects.count() == 1


def test_a_token_header_works_too(ingest_client):
    assert post(ingest_client, start_and_complete()[0]).status_code == 200


def test_gzip_as_the_transport_compresses_with_compression_gzip(transport):
    body = gzip.compress(json.dumps(start_and_complete()).encode(), compresslevel=3)
    response = transport.post(URL, body, content_type="application/json", HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 200 and response.json()["applied"] == 2


def test_without_a_key_the_answer_is_401_with_a_bearer_challenge(api_client):
    response = post(api_client, start_and_complete()[0])
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json() == {
        "error": "not_authenticated",
        "detail": "Authentication credentials were not provided.",
    }


@pytest.mark.parametrize("header", ["Bearer cm_nothere_xyz", "Bearer", "Bearer a b", "Bearer caf\u00e9"])
def test_a_bad_key_is_401(api_client, ingest_key, header):
    api_client.credentials(HTTP_AUTHORIZATION=header)
    response = post(api_client, start_and_complete()[0])
    assert (response.status_code, response.json()["error"]) == (401, "authentication_failed")
    assert not PipelineRun.objects.exists()


def test_another_scheme_or_a_revoked_key_is_401(api_client, transport):
    api_client.credentials(HTTP_AUTHORIZATION="Basic dXNlcjpwdw==")
    assert post(api_client, start_and_complete()[0]).status_code == 401
    IngestToken.objects.update(revoked_at=timezone.now())
    assert post(transport, start_and_complete()[0]).status_code == 401


def test_a_malformed_event_is_a_400_naming_the_problem(transport):
    website = example("examples_start_single_input")  # as published: no schemaURL
    response = post(transport, website)
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid",
        "detail": "Invalid OpenLineage event: /schemaURL: Required.",
        "fields": {"/schemaURL": ["Required."]},
    }


def test_a_list_with_bad_events_is_refused_whole_naming_each_by_position(transport):
    good, complete = start_and_complete()
    bad = {**complete, "run": {"runId": "nope"}}
    response = post(transport, [good, bad, complete, "START"])
    assert response.status_code == 400
    assert response.json()["fields"] == {
        "1": {"/run/runId": ["'nope' is not a UUID."]},
        "3": {"non_field_errors": ["An OpenLineage event is a JSON object, not a string."]},
    }
    assert response.json()["detail"] == "Invalid OpenLineage event: event 1: /run/runId: 'nope' is not a UUID."
    assert not PipelineRun.objects.exists()


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ([], {"non_field_errors": ["Expected at least one event."]}),
        (7, {"non_field_errors": ["An OpenLineage event is a JSON object, not a number."]}),
    ],
)
def test_a_body_that_is_no_event(transport, body, fields):
    response = post(transport, body)
    assert (response.status_code, response.json()["fields"]) == (400, fields)


def test_not_json_is_a_parse_error(transport):
    response = transport.post(URL, "{", content_type="application/json")
    assert (response.status_code, response.json()["error"]) == (400, "parse_error")
    bad_gzip = transport.post(URL, b"not gzip", content_type="application/json", HTTP_CONTENT_ENCODING="gzip")
    assert (bad_gzip.status_code, bad_gzip.json()["error"]) == (400, "parse_error")


def test_too_many_events_or_bytes_is_a_413(transport, settings, monkeypatch):
    monkeypatch.setattr(view, "MAX_EVENTS", 3)
    events = start_and_complete() * 2
    response = post(transport, events)
    assert (response.status_code, response.json()["detail"]) == (413, "At most 3 events per request; got 4.")
    settings.MONITORING_INGEST_MAX_BODY_BYTES = 2048
    assert post(transport, events[:3]).status_code == 413
    # The limit holds for the JSON itself: a small compressed body inflating past it is refused.
    bomb = gzip.compress(b"[" + b" " * 100_000 + b"]")
    response = transport.post(URL, bomb, content_type="application/json", HTTP_CONTENT_ENCODING="gzip")
    assert (response.status_code, response.json()["error"]) == (413, "payload_too_large")
    assert not PipelineRun.objects.exists()


def test_only_json_plain_or_gzip_is_taken(transport):
    form = transport.post(URL, {"eventType": "START"})
    assert (form.status_code, form.json()["error"]) == (415, "unsupported_media_type")
    brotli = transport.post(URL, b"{}", content_type="application/json", HTTP_CONTENT_ENCODING="br")
    assert (brotli.status_code, brotli.json()["error"]) == (415, "unsupported_media_type")
    assert "Content-Encoding 'br'" in brotli.json()["detail"]


def test_the_answer_has_the_documented_keys(transport):
    from monitoring.api.openlineage import OpenLineageOutcome, OpenLineageResult

    body = post(transport, start_and_complete()).json()
    assert set(body) == set(OpenLineageResult().fields)
    assert all(set(result) == set(OpenLineageOutcome().fields) for result in body["results"])


def test_it_counts_in_the_ingest_rate_limit(transport, settings):
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "ingest": "2/min"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    statuses = [post(transport, start_and_complete()[0]).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_text_json_allows_but_utf8_and_postgresql_refuse_is_escaped_not_a_500(transport):
    run_id, at = str(uuid.uuid4()), timezone.now() - timedelta(minutes=1)
    unmapped = run_event("START", run_id=run_id, at=at, name="x\ud800y")
    error = {"errorMessage": {**example("facet_error_message")["errorMessage"], "message": "bad\u0000\udfffbyte"}}
    failed = run_event("FAIL", run_id=str(uuid.uuid4()), at=at, run_facets=error)
    # json.dumps writes the lone surrogates as \ud800 escapes, as a producer's JSON may.
    response = post(transport, [unmapped, failed])
    assert response.status_code == 200
    assert "x\\\\ud800y" in response.content.decode()
    assert PipelineRun.objects.get().error == "bad\\x00\\udfffbyte"
