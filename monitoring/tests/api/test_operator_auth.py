"""Operator endpoints: 401 (with WWW-Authenticate) for missing or bad credentials, 403 for a caller not allowed."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from monitoring.models import Alert, Silence
from monitoring.services.tokens import create_ingest_token, create_read_token

pytestmark = pytest.mark.django_db
CHALLENGE = 'Session realm="operator"'
FUTURE = "2999-01-01T00:00:00Z"


@pytest.fixture
def alert():
    return Alert.objects.create(
        fingerprint="geo:gdelt",
        rule_name="geo",
        source="gdelt",
        severity="critical",
        summary="s",
        last_seen=timezone.now(),
    )


@pytest.fixture
def silence():
    now = timezone.now()
    return Silence.objects.create(starts_at=now, ends_at=now + timedelta(hours=1), reason="deploy")


@pytest.fixture
def endpoints(alert, silence):
    """Every operator endpoint, with a body it would accept from an operator."""
    return [
        (f"/api/v1/monitoring/alerts/{alert.pk}/acknowledge", {"comment": "x"}),
        (f"/api/v1/monitoring/alerts/{alert.pk}/resolve", {"comment": "x"}),
        ("/api/v1/monitoring/silences", {"ends_at": FUTURE, "reason": "r"}),
        (f"/api/v1/monitoring/silences/{silence.pk}/expire", None),
    ]


def _post(client, url, body):
    return client.post(url, body, format="json") if body is not None else client.post(url)


def test_no_credentials_are_a_401_with_a_challenge_saying_to_log_in(api_client, endpoints):
    for url, body in endpoints:
        response = _post(api_client, url, body)
        assert response.status_code == 401, url
        assert response["WWW-Authenticate"] == CHALLENGE
        assert response.json()["error"] == "not_authenticated"
        assert "Not logged in" in response.json()["detail"]


@pytest.mark.parametrize("header", ["Bearer some-key", "Basic b3A6cHc=", "Token cm_unknown_key", "Token a b"])
def test_a_bad_authorization_header_is_a_401_saying_what_is_wrong(api_client, endpoints, header):
    api_client.credentials(HTTP_AUTHORIZATION=header)
    for url, body in endpoints:
        response = _post(api_client, url, body)
        assert response.status_code == 401, url
        assert response["WWW-Authenticate"] == CHALLENGE
        assert response.json()["error"] == "authentication_failed"
        assert response.json()["detail"] != "Authentication credentials were not provided."


def test_a_bearer_header_is_told_operator_endpoints_take_a_session(api_client, endpoints):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer some-key")
    detail = _post(api_client, *endpoints[0]).json()["detail"]
    assert "'Bearer'" in detail and "logged-in session" in detail


def test_a_revoked_ingest_token_is_a_401(api_client, endpoints):
    token, key = create_ingest_token(name="retired")
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    response = _post(api_client, *endpoints[0])
    assert (response.status_code, response.json()["error"]) == (401, "authentication_failed")


@pytest.mark.parametrize("create", [create_ingest_token, create_read_token])
def test_a_valid_token_of_either_kind_is_a_403_forbidden_not_missing_credentials(api_client, endpoints, alert, create):
    _, key = create(name="program")
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    for url, body in endpoints:
        response = _post(api_client, url, body)
        assert response.status_code == 403, url
        assert "WWW-Authenticate" not in response
        assert response.json()["error"] == "forbidden"
        assert "token is not allowed" in response.json()["detail"]
    alert.refresh_from_db()
    assert alert.state == "firing"
    assert Silence.objects.count() == 1


def test_a_logged_in_operator_passes_even_with_a_stray_authorization_header(api_client, django_user_model, alert):
    api_client.force_login(django_user_model.objects.create_user("operator", password="pw"))
    api_client.credentials(HTTP_AUTHORIZATION="Bearer leftover")
    response = api_client.post(f"/api/v1/monitoring/alerts/{alert.pk}/acknowledge", {}, format="json")
    assert response.status_code == 200 and response.json()["acknowledged_by"] == "operator"


def test_a_logged_in_operator_without_the_csrf_token_is_a_403(django_user_model, alert):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(django_user_model.objects.create_user("operator", password="pw"))
    response = client.post(f"/api/v1/monitoring/alerts/{alert.pk}/acknowledge", {}, format="json")
    assert (response.status_code, response.json()["error"]) == (403, "permission_denied")


def test_ingest_endpoints_still_answer_a_bad_token_with_a_token_challenge(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Token cm_unknown_key")
    response = api_client.post("/api/v1/monitoring/runs", {"source": "acled", "stage": "scrape"}, format="json")
    assert (response.status_code, response["WWW-Authenticate"]) == (401, "Token")
