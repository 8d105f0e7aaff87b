"""Authorization: Token <key> for pipeline writers; every refusal is a 401 JSON body."""

import pytest
from django.utils import timezone

from monitoring.services.tokens import create_ingest_token

pytestmark = pytest.mark.django_db
URL = "/api/v1/monitoring/runs"
RUN = {"source": "acled", "stage": "scrape"}


@pytest.mark.parametrize(
    "header",
    [
        "Token",
        "Token a b",
        "Token cm_unknown_key",
        "token not-a-key-at-all",
    ],
)
def test_a_malformed_or_unknown_token_is_refused_with_a_json_reason(api_client, header):
    api_client.credentials(HTTP_AUTHORIZATION=header)
    response = api_client.post(URL, RUN, format="json")
    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["detail"]
    assert response["WWW-Authenticate"] == "Token"


def test_a_non_ascii_key_is_refused_not_crashed(api_client):
    response = api_client.post(URL, RUN, format="json", HTTP_AUTHORIZATION="Token ключ".encode().decode("latin-1"))
    assert response.status_code == 401
    assert "ASCII" in response.json()["detail"]


def test_a_revoked_token_no_longer_writes(api_client):
    token, key = create_ingest_token(name="retired-pipeline")
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api_client.post(URL, RUN, format="json").status_code == 401


def test_a_valid_token_writes_and_the_keyword_is_case_insensitive(api_client):
    _, key = create_ingest_token(name="pipeline")
    api_client.credentials(HTTP_AUTHORIZATION=f"TOKEN {key}")
    assert api_client.post(URL, RUN, format="json").status_code == 201


def test_other_schemes_are_left_to_other_authenticators(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer something")
    response = api_client.post(URL, RUN, format="json")
    assert response.status_code in {401, 403}
    assert response.json()["detail"]
