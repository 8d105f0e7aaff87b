"""Every error body is ``{"error", "detail", "fields"?}`` and every ``fields`` value is a list of message
strings (per item position, a dict of such lists, for a list body), whichever layer refused the request:
DRF's fields, a service's ``{field: message}``, a view's own check (monitoring.api.exceptions)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.errors import error_body, normal_fields
from monitoring.models import Alert, DataQualityMetric, PipelineRun, Silence
from monitoring.tests.factories import PipelineRunFactory

pytestmark = pytest.mark.django_db
API = "/api/v1/monitoring/"


def metric(**overrides):
    return {
        "source": "acled",
        "geocoding_attempts": 100,
        "geocoding_successes": 90,
        "validation_attempts": 100,
        "validation_passes": 80,
        **overrides,
    }


def is_messages(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(message, str) for message in value)


def assert_one_shape(body: dict, *, bulk: bool = False) -> dict:
    """The common error body; returns its ``fields`` ({} without)."""
    assert set(body) <= {"error", "detail", "fields"}, body
    assert isinstance(body["error"], str) and isinstance(body["detail"], str), body
    fields = body.get("fields", {})
    assert isinstance(fields, dict), body
    for key, value in fields.items():
        assert isinstance(key, str), body
        if bulk and key.isdigit():
            assert isinstance(value, dict) and value, body
            assert all(is_messages(messages) for messages in value.values()), body
        else:
            assert is_messages(value), body
    return fields


@pytest.fixture
def operator(api_client, django_user_model):
    api_client.force_login(django_user_model.objects.create_user("operator", password="pw"))
    return api_client


@pytest.fixture
def running_run():
    return PipelineRunFactory(status="running", finished_at=None, started_at=timezone.now() - timedelta(minutes=10))


# --- the normalisation itself ----------------------------------------------------------------------


def test_a_services_bare_string_becomes_a_list_of_one_message():
    assert normal_fields(fields={"source": "Bad source."}) == {"source": ["Bad source."]}


def test_a_list_bodys_items_keep_their_position_each_with_lists():
    fields = normal_fields(fields={3: {"source": ["Required."], "timestamp": "Bad."}})
    assert fields == {"3": {"source": ["Required."], "timestamp": ["Bad."]}}


def test_a_list_fields_messages_stay_one_list_naming_the_item():
    fields = normal_fields(fields={"weekdays": {0: ["Too big."], 2: ["Not a number."]}})
    assert fields == {"weekdays": ["Item 0: Too big.", "Item 2: Not a number."]}


def test_an_error_without_fields_has_no_fields_key():
    assert error_body(code="not_found", detail="No run 4.") == {"error": "not_found", "detail": "No run 4."}


# --- ingest ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (metric(geocoding_successes=101), "geocoding_successes"),  # the service's own rule
        (metric(source="has space"), "source"),  # the service's pattern
        (metric(geocoding_attempts="many"), "geocoding_attempts"),  # DRF's field
        (metric(geocodng_attempts=1), "geocodng_attempts"),  # unknown
        ("text", "non_field_errors"),
    ],
)
def test_an_invalid_metric_has_fields_as_lists_of_messages(ingest_client, payload, field):
    response = ingest_client.post(API + "metrics", payload, format="json")
    assert response.status_code == 400
    assert field in assert_one_shape(response.json())
    assert DataQualityMetric.objects.count() == 0


def test_a_bulk_error_is_keyed_by_position_with_lists_of_messages(ingest_client):
    items = [metric(), metric(geocoding_successes=101), 42, metric(typo=1)]
    response = ingest_client.post(API + "metrics", items, format="json")
    assert response.status_code == 400
    fields = assert_one_shape(response.json(), bulk=True)
    assert fields == {
        "1": {"geocoding_successes": ["Cannot exceed geocoding_attempts."]},
        "2": {"non_field_errors": ["Invalid data. Expected a dictionary, but got int."]},
        "3": {"typo": ["Unknown field."]},
    }
    assert DataQualityMetric.objects.count() == 0


def test_an_empty_list_has_its_message_in_a_list(ingest_client):
    response = ingest_client.post(API + "metrics", [], format="json")
    assert response.status_code == 400
    assert assert_one_shape(response.json()) == {"non_field_errors": ["Expected at least one metric."]}


# --- runs and finish (the run service reports bare strings) -----------------------------------------


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"source": "has space", "stage": "scrape"}, "source"),
        ({"source": "acled", "stage": "scrape", "finished_at": timezone.now().isoformat()}, "finished_at"),
        ({"source": "acled", "stage": "publish"}, "stage"),
        ({"source": "acled", "stage": "scrape", "itmes_in": 1}, "itmes_in"),
    ],
)
def test_an_invalid_run_has_fields_as_lists_of_messages(ingest_client, payload, field):
    response = ingest_client.post(API + "runs", payload, format="json")
    assert response.status_code == 400
    assert list(assert_one_shape(response.json())) == [field]
    assert PipelineRun.objects.count() == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"status": "failed", "finished_at": (timezone.now() - timedelta(days=1)).isoformat()}, "finished_at"),
        ({"status": "running"}, "status"),
        ({"status": "failed", "eror": "quota"}, "eror"),
    ],
)
def test_an_invalid_finish_has_fields_as_lists_of_messages(ingest_client, running_run, payload, field):
    response = ingest_client.post(f"{API}runs/{running_run.pk}/finish", payload, format="json")
    assert response.status_code == 400
    assert list(assert_one_shape(response.json())) == [field]
    running_run.refresh_from_db()
    assert running_run.status == "running"


def test_a_runs_query_error_has_its_messages_in_a_list(ingest_client):
    response = ingest_client.get(API + "runs", {"limit": 0})
    assert response.status_code == 400
    assert list(assert_one_shape(response.json())) == ["limit"]


# --- silences and alert transitions ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"ends_at": "2000-01-01T00:00:00Z", "reason": "past"}, "ends_at"),  # the silence rules
        ({"ends_at": "2999-01-01T00:00:00Z"}, "reason"),
        ({"ends_at": "2999-01-01T00:00:00Z", "reason": "r", "weekdays": [2]}, "duration_minutes"),
        ({"ends_at": "2999-01-01T00:00:00Z", "reason": "r", "resaon": "typo"}, "resaon"),
    ],
)
def test_an_invalid_silence_has_fields_as_lists_of_messages(operator, payload, field):
    response = operator.post(API + "silences", payload, format="json")
    assert response.status_code == 400
    fields = assert_one_shape(response.json())
    assert field in fields
    assert Silence.objects.count() == 0


def test_a_list_fields_errors_name_the_item_within_one_list(operator):
    payload = {"ends_at": "2999-01-01T00:00:00Z", "reason": "r", "weekdays": [1, 9]}
    payload |= {"daily_start": "01:00", "duration_minutes": 5}
    response = operator.post(API + "silences", payload, format="json")
    assert response.status_code == 400
    assert assert_one_shape(response.json()) == {"weekdays": ["Item 1: Ensure this value is less than or equal to 6."]}


def test_an_invalid_comment_has_its_messages_in_a_list(operator):
    alert = Alert.objects.create(
        fingerprint="geo:gdelt",
        rule_name="geo",
        source="gdelt",
        severity="high",
        summary="low",
        last_seen=timezone.now(),
    )
    response = operator.post(f"{API}alerts/{alert.pk}/acknowledge", {"comment": "x" * 2001}, format="json")
    assert response.status_code == 400
    assert list(assert_one_shape(response.json())) == ["comment"]


# --- Idempotency-Key and tokens -----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["metrics", "runs"])
def test_a_malformed_idempotency_key_names_the_header_with_a_list(ingest_client, path):
    body = metric() if path == "metrics" else {"source": "acled", "stage": "scrape"}
    response = ingest_client.post(API + path, body, format="json", HTTP_IDEMPOTENCY_KEY="k" * 256)
    assert response.status_code == 400
    assert assert_one_shape(response.json()) == {"Idempotency-Key": ["1-255 printable characters."]}
    assert DataQualityMetric.objects.count() == PipelineRun.objects.count() == 0


def test_a_reused_idempotency_key_is_a_422_with_the_common_body_and_no_fields(ingest_client):
    ingest_client.post(API + "metrics", metric(), format="json", HTTP_IDEMPOTENCY_KEY="k")
    response = ingest_client.post(API + "metrics", metric(validation_passes=1), format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 422
    assert response.json() == {
        "error": "idempotency_key_reused",
        "detail": "This Idempotency-Key was used with a different request.",
    }
    assert DataQualityMetric.objects.count() == 1


def test_a_reused_key_on_finish_is_a_422_with_the_common_body(ingest_client, running_run):
    url = f"{API}runs/{running_run.pk}/finish"
    assert ingest_client.post(url, {"status": "failed"}, format="json", HTTP_IDEMPOTENCY_KEY="f").status_code == 200
    response = ingest_client.post(url, {"status": "succeeded"}, format="json", HTTP_IDEMPOTENCY_KEY="f")
    assert response.status_code == 422
    assert assert_one_shape(response.json()) == {}
    assert response.json()["error"] == "idempotency_key_reused"


@pytest.mark.parametrize("header", ["Token cm_nothere_xyz", "Token a b"])
def test_a_refused_token_has_the_common_body_without_fields(api_client, header):
    api_client.credentials(HTTP_AUTHORIZATION=header)
    response = api_client.post(API + "metrics", metric(), format="json")
    assert response.status_code == 401
    assert assert_one_shape(response.json()) == {}
    assert response.json()["error"] == "authentication_failed"
