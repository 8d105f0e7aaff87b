"""Requests Django itself refuses as malformed get the API's JSON error body under /api/, not Django's
HTML page (found probing odd query strings and headers beyond tests/reliability/test_hostile_http.py)."""

import pytest

pytestmark = pytest.mark.django_db


def assert_json_bad_request(response) -> None:
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": "bad_request", "detail": "Malformed request."}


def test_more_query_parameters_than_django_takes_is_a_json_400(ingest_client, settings):
    query = "&".join(f"p{number}=1" for number in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1))
    assert_json_bad_request(ingest_client.get(f"/api/v1/monitoring/runs?{query}"))


def test_a_host_outside_allowed_hosts_is_a_json_400(api_client):
    response = api_client.get("/api/v1/monitoring/health", HTTP_HOST="evil.example")
    assert_json_bad_request(response)
    assert b"evil.example" not in response.content


def test_outside_the_api_the_refusal_stays_djangos_page(client):
    response = client.get("/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
