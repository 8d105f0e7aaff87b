"""POST /ws-ticket: a logged-in user gets a short-lived, single-use ticket for the live feed."""

import pytest

from monitoring.services.tickets import redeem_ticket

pytestmark = pytest.mark.django_db
URL = "/api/v1/monitoring/ws-ticket"


def test_a_logged_in_user_gets_a_ticket_that_works_once(api_client, django_user_model, settings):
    user = django_user_model.objects.create_user("operator", password="pw")
    api_client.force_login(user)
    response = api_client.post(URL)
    assert response.status_code == 201
    body = response.json()
    assert body["expires_in"] == settings.WEBSOCKET_TICKET_TTL
    assert redeem_ticket(ticket=body["ticket"]) == user.pk
    assert redeem_ticket(ticket=body["ticket"]) is None


def test_an_anonymous_caller_is_told_to_log_in_and_an_ingest_token_is_not_allowed(api_client, ingest_key):
    anonymous = api_client.post(URL)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "not_authenticated"
    assert anonymous["WWW-Authenticate"] == 'Session realm="operator"'
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {ingest_key}")
    token = api_client.post(URL)
    assert (token.status_code, token.json()["error"]) == (403, "forbidden")
