"""POST notifications/test: operators only (401 / 403 like other operator endpoints), the receiver's answer."""

import pytest
from rest_framework.test import APIClient

from monitoring.models import NotificationDelivery
from monitoring.tests.api.test_documents import assert_documented
from monitoring.tests.webhook_receiver import Receiver

pytestmark = pytest.mark.django_db
URL = "/api/v1/monitoring/notifications/test"


@pytest.fixture
def receiver(settings):
    with Receiver(status=202) as r:
        settings.MONITORING_WEBHOOK_URL = r.url
        yield r


def test_anonymous_is_a_401_with_the_operator_challenge(api_client, receiver):
    response = api_client.post(URL)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Session realm="operator"'
    assert response.json()["error"] == "not_authenticated"
    assert receiver.requests == []


def test_an_ingest_token_is_a_403(ingest_client, receiver):
    response = ingest_client.post(URL)
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    assert receiver.requests == []


def test_an_operator_gets_the_receivers_status(api_client, django_user_model, receiver):
    api_client.force_login(django_user_model.objects.create_user("operator", password="pw"))
    response = api_client.post(URL)
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True
    assert body["status_code"] == 202
    assert body["error"] is None
    assert isinstance(body["elapsed_ms"], float)
    assert body["url_host"] == f"127.0.0.1:{receiver.port}"
    assert "secret-token" not in response.content.decode()
    assert len(receiver.requests) == 1 and receiver.requests[0][1]["test"] is True
    assert not NotificationDelivery.objects.exists()
    assert_documented(response, path="notifications/test", method="post")


def test_a_failing_receiver_is_ok_false(api_client, django_user_model, receiver):
    receiver.status = 500
    api_client.force_login(django_user_model.objects.create_user("operator", password="pw"))
    body = api_client.post(URL).json()
    assert body["ok"] is False and body["status_code"] == 500 and body["error"]


def test_no_url_is_an_error_in_the_answer(api_client, django_user_model, settings):
    settings.MONITORING_WEBHOOK_URL = None
    api_client.force_login(django_user_model.objects.create_user("operator", password="pw"))
    body = api_client.post(URL).json()
    assert body == {
        "ok": False,
        "status_code": None,
        "elapsed_ms": 0.0,
        "error": "no webhook configured (MONITORING_WEBHOOK_URL is unset, and no Slack bot token and channel)",
        "url_host": None,
    }


def test_a_session_without_csrf_is_refused(django_user_model, receiver):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(django_user_model.objects.create_user("operator", password="pw"))
    response = client.post(URL)
    assert response.status_code == 403
    assert receiver.requests == []
