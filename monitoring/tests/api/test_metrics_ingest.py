"""POST /api/v1/monitoring/metrics: auth, validation, bulk atomicity, size limits, idempotency."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from monitoring.models import DataQualityMetric, IdempotencyRecord, IngestToken

pytestmark = pytest.mark.django_db
URL = "/api/v1/monitoring/metrics"


def metric(**overrides):
    return {
        "source": "acled",
        "geocoding_attempts": 100,
        "geocoding_successes": 90,
        "validation_attempts": 100,
        "validation_passes": 80,
        **overrides,
    }


def test_without_a_token_ingest_is_refused_with_401(api_client):
    response = api_client.post(URL, metric(), format="json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json()["error"] == "not_authenticated"
    assert DataQualityMetric.objects.count() == 0


@pytest.mark.parametrize("header", ["Token cm_nothere_xyz", "Token", "Token a b", "Bearer abc", "Token garbage"])
def test_a_bad_token_is_refused_with_401(api_client, ingest_key, header):
    api_client.credentials(HTTP_AUTHORIZATION=header)
    response = api_client.post(URL, metric(), format="json")
    assert response.status_code == 401
    assert DataQualityMetric.objects.count() == 0


def test_a_key_with_the_right_prefix_but_wrong_secret_is_refused(api_client, ingest_key):
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {ingest_key[:-4]}AAAA")
    assert api_client.post(URL, metric(), format="json").status_code == 401


def test_a_revoked_token_is_refused(ingest_client):
    IngestToken.objects.update(revoked_at=timezone.now())
    assert ingest_client.post(URL, metric(), format="json").status_code == 401


def test_a_session_login_cannot_ingest(api_client, django_user_model):
    api_client.force_login(django_user_model.objects.create_superuser("admin", password="pw"))
    assert api_client.post(URL, metric(), format="json").status_code == 401


def test_one_metric_is_stored_with_its_values(ingest_client):
    at = (timezone.now() - timedelta(minutes=3)).replace(microsecond=0)
    response = ingest_client.post(URL, metric(timestamp=at.isoformat(), metric_type="hourly"), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["created"] == 1
    row = DataQualityMetric.objects.get(pk=body["ids"][0])
    assert (row.source, row.metric_type, row.timestamp) == ("acled", "hourly", at)
    assert (row.geocoding_attempts, row.geocoding_successes, row.validation_attempts, row.validation_passes) == (
        100,
        90,
        100,
        80,
    )


def test_a_metric_without_timestamp_is_stamped_now(ingest_client):
    before = timezone.now()
    ingest_client.post(URL, metric(), format="json")
    assert DataQualityMetric.objects.get().timestamp >= before


def test_a_list_is_stored_in_bulk(ingest_client):
    response = ingest_client.post(URL, [metric(source=f"s{i}") for i in range(250)], format="json")
    assert response.status_code == 201
    assert response.json()["created"] == 250
    assert DataQualityMetric.objects.count() == 250


def test_a_bulk_request_with_one_bad_item_writes_nothing(ingest_client):
    items = [metric() for _ in range(10)] + [metric(geocoding_successes=101)]
    response = ingest_client.post(URL, items, format="json")
    assert response.status_code == 400
    fields = response.json()["fields"]
    assert fields == {"10": {"geocoding_successes": ["Cannot exceed geocoding_attempts."]}}
    assert DataQualityMetric.objects.count() == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (metric(geocoding_successes=101), "geocoding_successes"),
        (metric(validation_passes=101), "validation_passes"),
        (metric(geocoding_attempts=-1), "geocoding_attempts"),
        (metric(geocoding_attempts="many"), "geocoding_attempts"),
        (metric(geocoding_attempts=2**40), "geocoding_attempts"),
        (metric(source=""), "source"),
        (metric(source="has space"), "source"),
        (metric(source="x" * 101), "source"),
        (metric(metric_type="Not A Type"), "metric_type"),
        (metric(timestamp="yesterday"), "timestamp"),
        (metric(timestamp=(timezone.now() + timedelta(hours=1)).isoformat()), "timestamp"),
        ({k: v for k, v in metric().items() if k != "source"}, "source"),
    ],
)
def test_invalid_metric_is_a_400_naming_the_field(ingest_client, payload, field):
    response = ingest_client.post(URL, payload, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid"
    assert field in body["fields"], body
    assert DataQualityMetric.objects.count() == 0


@pytest.mark.parametrize("raw", ["[]", '"text"', "42", "null", "[1, 2]", "[null]"])
def test_a_body_that_is_not_a_metric_or_list_of_metrics_is_a_400(ingest_client, raw):
    response = ingest_client.post(URL, data=raw, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid"
    assert DataQualityMetric.objects.count() == 0


def test_deeply_nested_json_is_a_parse_error_not_a_crash(ingest_client):
    response = ingest_client.post(URL, data="[" * 100_000 + "]" * 100_000, content_type="application/json")
    assert response.status_code in (400, 413)
    assert response.json()["error"] in {"parse_error", "payload_too_large"}


def test_a_body_over_the_byte_limit_is_a_413(ingest_client, settings):
    settings.MONITORING_INGEST_MAX_BODY_BYTES = 2048
    response = ingest_client.post(URL, [metric() for _ in range(40)], format="json")
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert DataQualityMetric.objects.count() == 0


def test_more_items_than_the_batch_limit_is_a_413(ingest_client, settings):
    settings.MONITORING_INGEST_MAX_BATCH = 5
    response = ingest_client.post(URL, [metric() for _ in range(6)], format="json")
    assert response.status_code == 413
    assert "At most 5" in response.json()["detail"]
    assert ingest_client.post(URL, [metric() for _ in range(5)], format="json").status_code == 201


def test_a_retry_with_the_same_key_returns_the_first_answer_and_writes_nothing(ingest_client):
    first = ingest_client.post(URL, [metric(), metric()], format="json", HTTP_IDEMPOTENCY_KEY="batch-1")
    retry = ingest_client.post(URL, [metric(), metric()], format="json", HTTP_IDEMPOTENCY_KEY="batch-1")
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert DataQualityMetric.objects.count() == 2


def test_the_same_key_with_a_different_body_is_a_422(ingest_client):
    ingest_client.post(URL, metric(), format="json", HTTP_IDEMPOTENCY_KEY="k")
    response = ingest_client.post(URL, metric(geocoding_successes=1), format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 422
    assert response.json()["error"] == "idempotency_key_reused"
    assert DataQualityMetric.objects.count() == 1


def test_keys_belong_to_their_token(ingest_client):
    from monitoring.services.tokens import create_ingest_token

    _, other_key = create_ingest_token(name="other")
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Token {other_key}")
    ingest_client.post(URL, metric(), format="json", HTTP_IDEMPOTENCY_KEY="shared")
    assert other.post(URL, metric(), format="json", HTTP_IDEMPOTENCY_KEY="shared").status_code == 201
    assert DataQualityMetric.objects.count() == 2


def test_a_refused_request_does_not_use_up_its_key(ingest_client):
    bad = ingest_client.post(URL, metric(geocoding_successes=999), format="json", HTTP_IDEMPOTENCY_KEY="k2")
    assert bad.status_code == 400
    good = ingest_client.post(URL, metric(), format="json", HTTP_IDEMPOTENCY_KEY="k2")
    assert good.status_code == 201
    assert IdempotencyRecord.objects.count() == 1


def test_an_overlong_idempotency_key_is_a_400(ingest_client):
    response = ingest_client.post(URL, metric(), format="json", HTTP_IDEMPOTENCY_KEY="k" * 256)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["fields"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_write_once(ingest_key):
    """Two racing retries: the unique key lets one commit; the other replays its answer."""
    barrier = threading.Barrier(4)
    responses = []

    def send():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {ingest_key}")
        barrier.wait()
        try:
            responses.append(client.post(URL, [metric()] * 50, format="json", HTTP_IDEMPOTENCY_KEY="race"))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.status_code for r in responses] == [201] * 4
    assert len({tuple(r.json()["ids"]) for r in responses}) == 1
    assert DataQualityMetric.objects.count() == 50
