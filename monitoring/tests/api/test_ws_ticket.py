"""POST /ws-ticket: a logged-in user, or a program with a read token, gets a short-lived, single-use ticket for
the live feed; an ingest token is not allowed (separation of duties)."""

import pytest
from django.utils import timezone

from monitoring.models import IngestToken
from monitoring.services.tickets import redeem_ticket
from monitoring.services.tokens import create_read_token

pytestmark = pytest.mark.django_db
URL = "/api/v1/monitoring/ws-ticket"
CHALLENGE = 'Session realm="operator", Bearer realm="feed"'


@pytest.fixture
def read_key() -> str:
    _, key = create_read_token(name="follower")
    return key


def test_a_logged_in_user_gets_a_ticket_that_works_once(api_client, django_user_model, settings):
    user = django_user_model.objects.create_user("operator", password="pw")
    api_client.force_login(user)
    response = api_client.post(URL)
    assert response.status_code == 201
    body = response.json()
    assert body["expires_in"] == settings.WEBSOCKET_TICKET_TTL
    assert redeem_ticket(ticket=body["ticket"]) == user.pk
    assert redeem_ticket(ticket=body["ticket"]) is None


@pytest.mark.parametrize("scheme", ["Bearer", "Token", "bearer"])
def test_a_read_token_gets_a_ticket_held_by_the_token(api_client, read_key, scheme):
    api_client.credentials(HTTP_AUTHORIZATION=f"{scheme} {read_key}")
    response = api_client.post(URL)
    assert response.status_code == 201
    token = IngestToken.objects.get(prefix=read_key.split("_")[1])
    assert redeem_ticket(ticket=response.json()["ticket"]) == f"token:{token.pk}"


def test_an_anonymous_caller_is_told_how_to_authenticate_and_an_ingest_token_is_not_allowed(api_client, ingest_key):
    anonymous = api_client.post(URL)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "not_authenticated"
    assert anonymous["WWW-Authenticate"] == CHALLENGE
    for scheme in ("Token", "Bearer"):
        api_client.credentials(HTTP_AUTHORIZATION=f"{scheme} {ingest_key}")
        token = api_client.post(URL)
        assert (token.status_code, token.json()["error"]) == (403, "forbidden")
        assert "read token" in token.json()["detail"]


@pytest.mark.parametrize("header", ["Bearer cm_unknown", "Basic b3A6cHc=", "Bearer a b", "Bearer"])
def test_a_bad_authorization_header_is_a_401_with_the_challenge(api_client, header):
    api_client.credentials(HTTP_AUTHORIZATION=header)
    response = api_client.post(URL)
    assert (response.status_code, response.json()["error"]) == (401, "authentication_failed")
    assert response["WWW-Authenticate"] == CHALLENGE


def test_a_revoked_read_token_gets_no_ticket(api_client, read_key):
    IngestToken.objects.filter(prefix=read_key.split("_")[1]).update(revoked_at=timezone.now())
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {read_key}")
    response = api_client.post(URL)
    assert (response.status_code, response.json()["error"]) == (401, "authentication_failed")


def test_a_logged_in_user_wins_over_a_stray_header(api_client, django_user_model):
    user = django_user_model.objects.create_user("operator", password="pw")
    api_client.force_login(user)
    api_client.credentials(HTTP_AUTHORIZATION="Basic b3A6cHc=")
    response = api_client.post(URL)
    assert response.status_code == 201
    assert redeem_ticket(ticket=response.json()["ticket"]) == user.pk
