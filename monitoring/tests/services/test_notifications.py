"""Queuing notices (none without a webhook) and send_test_notification: one marked POST through the real
delivery path, the receiver's answer reported."""

import pytest

from monitoring.models import Alert, NotificationDelivery
from monitoring.services.notifications import TEST_SUMMARY, enqueue_notification, send_test_notification
from monitoring.tests.factories import AlertFactory
from monitoring.tests.webhook_receiver import Receiver, unreachable_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver(settings):
    with Receiver() as r:
        settings.MONITORING_WEBHOOK_URL = r.url
        settings.MONITORING_WEBHOOK_FORMAT = "json"
        yield r


def test_without_a_webhook_nothing_is_queued(settings):
    settings.MONITORING_WEBHOOK_URL = None
    enqueue_notification(alert=AlertFactory(), event="fired")
    assert NotificationDelivery.objects.count() == 0


def test_the_receiver_gets_exactly_one_marked_post_and_its_status_is_reported(receiver):
    result = send_test_notification()
    assert result.ok is True
    assert result.status_code == 204
    assert result.error is None
    assert result.elapsed_ms >= 0
    assert result.url_host == f"127.0.0.1:{receiver.port}"
    assert len(receiver.requests) == 1
    path, body = receiver.requests[0]
    assert path == "/hooks/secret-token-123"
    assert body["test"] is True
    assert body["event"] == "test"
    assert body["text"] == TEST_SUMMARY
    assert "[TEST]" in body["text"] and "no action needed" in body["text"]
    assert not Alert.objects.exists()
    assert not NotificationDelivery.objects.exists()


def test_slack_format_carries_the_same_text_in_slacks_shape(receiver, settings):
    settings.MONITORING_WEBHOOK_FORMAT = "slack"
    assert send_test_notification().ok
    ((_, body),) = receiver.requests
    assert body["text"] == TEST_SUMMARY
    assert body["blocks"][0]["type"] == "section"
    assert "TEST" in body["blocks"][0]["text"]["text"]


def test_a_receiver_answering_500_is_not_ok_with_its_status(receiver):
    receiver.status = 500
    result = send_test_notification()
    assert result.ok is False
    assert result.status_code == 500
    assert "500" in result.error
    assert len(receiver.requests) == 1  # not retried


def test_an_unreachable_receiver_is_an_error_not_an_exception(settings):
    settings.MONITORING_WEBHOOK_URL = unreachable_url()
    result = send_test_notification()
    assert result.ok is False
    assert result.status_code is None
    assert result.error
    assert result.url_host.startswith("127.0.0.1:")


def test_a_url_that_is_not_http_is_an_error(settings):
    settings.MONITORING_WEBHOOK_URL = "ftp://example.org/hook"
    result = send_test_notification()
    assert result.ok is False
    assert "http(s)" in result.error


def test_no_url_is_a_clear_error(settings):
    settings.MONITORING_WEBHOOK_URL = None
    result = send_test_notification()
    assert result.ok is False
    assert result.status_code is None
    assert result.error.startswith("no webhook configured")
    assert result.url_host is None


def test_the_host_never_includes_credentials(settings):
    settings.MONITORING_WEBHOOK_URL = unreachable_url().replace("http://", "http://user:pass@")
    assert "pass" not in send_test_notification().url_host
