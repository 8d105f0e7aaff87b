"""Request bodies refuse what they do not understand: a key that names no field is a 400 naming it, and
nothing is written (monitoring.api.serializers.StrictSerializer)."""

from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from django.utils import timezone

from monitoring.models import Alert, DataQualityMetric, IdempotencyRecord, PipelineRun, Silence
from monitoring.tests.factories import PipelineRunFactory

pytestmark = pytest.mark.django_db
API = "/api/v1/monitoring/"
UNKNOWN = ["Unknown field."]


def metric(**overrides):
    return {
        "source": "acled",
        "geocoding_attempts": 100,
        "geocoding_successes": 90,
        "validation_attempts": 100,
        "validation_passes": 80,
        **overrides,
    }


def invalid(fields: dict) -> dict:
    return {"error": "invalid", "detail": "Invalid input.", "fields": fields}


@pytest.fixture
def operator(api_client, django_user_model):
    api_client.force_login(django_user_model.objects.create_user("operator", password="pw"))
    return api_client


def test_a_metric_with_an_unknown_field_is_refused_naming_it(ingest_client):
    body = {k: v for k, v in metric().items() if k != "geocoding_attempts"} | {"geocodng_attempts": 100}
    body["geocoding_successes"] = 0
    response = ingest_client.post(API + "metrics", body, format="json")
    assert response.status_code == 400
    assert response.json() == invalid({"geocodng_attempts": UNKNOWN})
    assert DataQualityMetric.objects.count() == 0


def test_an_unknown_field_is_reported_with_the_other_fields_errors(ingest_client):
    response = ingest_client.post(API + "metrics", metric(geocoding_attempts="many", comment="x"), format="json")
    assert response.status_code == 400
    fields = response.json()["fields"]
    assert set(fields) == {"geocoding_attempts", "comment"}
    assert fields["comment"] == UNKNOWN
    assert DataQualityMetric.objects.count() == 0


def test_a_bulk_list_with_one_item_carrying_an_unknown_field_writes_nothing(ingest_client):
    items = [metric(source=f"s{i}") for i in range(10)] + [metric(geocodng_attempts=100)]
    response = ingest_client.post(API + "metrics", items, format="json")
    assert response.status_code == 400
    assert response.json() == invalid({"10": {"geocodng_attempts": UNKNOWN}})
    assert DataQualityMetric.objects.count() == 0


def test_every_item_with_an_unknown_field_is_named_by_its_position(ingest_client):
    items = [metric(extra=1), metric(), metric(other=2, source="")]
    response = ingest_client.post(API + "metrics", items, format="json")
    assert response.status_code == 400
    fields = response.json()["fields"]
    assert set(fields) == {"0", "2"}
    assert fields["0"] == {"extra": UNKNOWN}
    assert fields["2"]["other"] == UNKNOWN and "source" in fields["2"]
    assert DataQualityMetric.objects.count() == 0


def test_a_metric_with_only_known_fields_is_still_stored(ingest_client):
    response = ingest_client.post(API + "metrics", metric(metric_type="hourly"), format="json")
    assert response.status_code == 201, response.json()
    assert DataQualityMetric.objects.get().geocoding_attempts == 100


def test_an_unknown_field_does_not_use_up_the_idempotency_key(ingest_client):
    refused = ingest_client.post(API + "metrics", metric(typo=1), format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert refused.status_code == 400
    assert IdempotencyRecord.objects.count() == 0
    accepted = ingest_client.post(API + "metrics", metric(), format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert accepted.status_code == 201
    assert DataQualityMetric.objects.count() == 1


def test_a_run_with_an_unknown_field_is_refused_naming_it(ingest_client):
    response = ingest_client.post(API + "runs", {"source": "acled", "stage": "scrape", "itmes_in": 3}, format="json")
    assert response.status_code == 400
    assert response.json() == invalid({"itmes_in": UNKNOWN})
    assert PipelineRun.objects.count() == 0


def test_finishing_a_run_with_an_unknown_field_is_refused_and_the_run_stays_running(ingest_client):
    run = PipelineRunFactory(status="running", finished_at=None)
    response = ingest_client.post(f"{API}runs/{run.pk}/finish", {"status": "succeeded", "items_outt": 5}, format="json")
    assert response.status_code == 400
    assert response.json() == invalid({"items_outt": UNKNOWN})
    run.refresh_from_db()
    assert (run.status, run.finished_at) == ("running", None)


def test_a_silence_with_an_unknown_field_is_refused_naming_it(operator):
    ends = (timezone.now() + timedelta(hours=2)).isoformat()
    response = operator.post(API + "silences", {"ends_at": ends, "reason": "upgrade", "sourse": "gdelt"}, format="json")
    assert response.status_code == 400
    assert response.json() == invalid({"sourse": UNKNOWN})
    assert Silence.objects.count() == 0


@pytest.mark.parametrize("transition", ["acknowledge", "resolve"])
def test_an_alert_transition_with_an_unknown_field_is_refused_and_changes_nothing(operator, transition):
    alert = Alert.objects.create(
        fingerprint="geo:gdelt",
        rule_name="geo",
        source="gdelt",
        severity="high",
        summary="low",
        last_seen=timezone.now(),
    )
    response = operator.post(f"{API}alerts/{alert.pk}/{transition}", {"coment": "on it"}, format="json")
    assert response.status_code == 400
    assert response.json() == invalid({"coment": UNKNOWN})
    alert.refresh_from_db()
    assert alert.state == "firing"
    assert not alert.events.exists()


def test_every_request_body_in_the_schema_refuses_unknown_properties():
    schema = yaml.safe_load((Path(__file__).resolve().parents[3] / "docs" / "openapi.yaml").read_text())
    components = schema["components"]["schemas"]
    bodies = {
        content["schema"]["$ref"].rsplit("/", 1)[1]
        for path in schema["paths"].values()
        for operation in path.values()
        for content in operation.get("requestBody", {}).get("content", {}).values()
        if "$ref" in content["schema"]
    }
    bodies |= {ref["$ref"].rsplit("/", 1)[1] for ref in components["MetricOrBatchRequest"]["oneOf"] if "$ref" in ref}
    objects = {name for name in bodies if components[name].get("type") == "object"}
    assert objects >= {"MetricRequest", "RunCreateRequest", "RunFinishRequest", "SilenceRequest", "CommentRequest"}
    assert {name: components[name].get("additionalProperties") for name in objects} == dict.fromkeys(objects, False)
