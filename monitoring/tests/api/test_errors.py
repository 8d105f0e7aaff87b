"""Every API error is a JSON body with a code, never an HTML page."""

import pytest

pytestmark = pytest.mark.django_db


def test_unknown_api_path_is_a_json_404(client):
    response = client.get("/api/v1/monitoring/no-such-thing")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == "not_found"


def test_invalid_json_is_a_json_400(ingest_client):
    response = ingest_client.post("/api/v1/monitoring/metrics", data=b"{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"] == "parse_error"


def test_nan_is_not_json(ingest_client):
    response = ingest_client.post(
        "/api/v1/monitoring/metrics",
        data=b'{"source": "a", "geocoding_attempts": NaN}',
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["error"] == "parse_error"


def test_non_json_content_type_is_a_json_415(ingest_client):
    response = ingest_client.post("/api/v1/monitoring/metrics", data="source=a", content_type="text/plain")
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"


def test_wrong_method_is_a_json_405(api_client, public_read):
    response = api_client.delete("/api/v1/monitoring/pipeline-status")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"
