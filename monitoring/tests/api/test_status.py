"""GET /api/v1/monitoring/pipeline-status: the contract dashboards and scripts rely on."""

from datetime import datetime

import pytest

from monitoring.tests.factories import DataQualityMetricFactory, PipelineRunFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("public_read")]
URL = "/api/v1/monitoring/pipeline-status"
STATUSES = {"healthy", "degraded", "critical", "no_data"}


def _is_iso(value: str) -> bool:
    return isinstance(value, str) and value.endswith("Z") and datetime.fromisoformat(value) is not None


def test_empty_database_answers_200_with_no_data(api_client):
    response = api_client.get(URL)
    assert response.status_code == 200
    body = response.json()
    assert body["overall_status"] == "no_data"
    assert body["data_quality"]["geocoding_success_rate"] == 0.0
    assert body["data_quality"]["validation_pass_rate"] == 0.0
    assert body["anomalies"] == [] and body["alerts"] == []


def test_document_has_the_documented_shape_and_types(api_client):
    DataQualityMetricFactory(source="acled")
    PipelineRunFactory(source="acled")
    body = api_client.get(URL).json()
    assert set(body) >= {"timestamp", "overall_status", "scraping_health", "data_quality", "anomalies", "alerts"}
    assert _is_iso(body["timestamp"]) and body["overall_status"] in STATUSES
    scraping = body["scraping_health"]
    assert scraping["status"] in STATUSES
    (source,) = scraping["sources"]
    assert set(source) >= {"source", "last_run", "last_success", "stale", "failure_rate"}
    assert _is_iso(source["last_run"]) and _is_iso(source["last_success"])
    assert isinstance(source["stale"], bool) and isinstance(source["failure_rate"], float)
    quality = body["data_quality"]
    for key in ("geocoding_success_rate", "validation_pass_rate"):
        assert isinstance(quality[key], float)
    for key in (
        "geocoding_attempts",
        "geocoding_successes",
        "validation_attempts",
        "validation_passes",
        "total_geocoded",
        "total_validated",
        "window_hours",
    ):
        assert isinstance(quality[key], int)
    assert quality["window_hours"] == 24 and _is_iso(quality["last_updated"]) and quality["status"] in STATUSES
    assert quality["by_source"][0]["source"] == "acled"


def test_window_hours_parameter_is_applied(api_client):
    assert api_client.get(URL, {"window_hours": 6}).json()["data_quality"]["window_hours"] == 6
    assert api_client.get(URL, {"window_hours": 720}).status_code == 200


@pytest.mark.parametrize("value", ["0", "721", "abc", "-3", "1.5"])
def test_window_hours_out_of_range_is_a_json_400(api_client, value):
    response = api_client.get(URL, {"window_hours": value})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid" and "window_hours" in body["fields"]


def test_private_read_requires_a_login_or_token(api_client, settings, ingest_key, django_user_model):
    settings.MONITORING_PUBLIC_READ = False
    response = api_client.get(URL)
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {ingest_key}")
    assert api_client.get(URL).status_code == 200
    api_client.credentials()
    user = django_user_model.objects.create_user("operator", password="pw")
    api_client.force_login(user)
    assert api_client.get(URL).status_code == 200
