from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from monitoring.tests.webhook_receiver import Receiver

pytestmark = pytest.mark.django_db


def test_prints_the_receivers_status_and_time(settings):
    with Receiver(status=200) as receiver:
        settings.MONITORING_WEBHOOK_URL = receiver.url
        out = StringIO()
        call_command("send_test_notification", stdout=out)
    assert len(receiver.requests) == 1
    assert receiver.requests[0][1]["test"] is True
    assert "HTTP 200" in out.getvalue()
    assert " ms" in out.getvalue()
    assert "secret-token" not in out.getvalue()


def test_a_failure_is_a_command_error(settings):
    with Receiver(status=503) as receiver:
        settings.MONITORING_WEBHOOK_URL = receiver.url
        with pytest.raises(CommandError, match="HTTP 503"):
            call_command("send_test_notification", stdout=StringIO())


def test_no_url_is_a_command_error(settings):
    settings.MONITORING_WEBHOOK_URL = None
    with pytest.raises(CommandError, match="no webhook configured"):
        call_command("send_test_notification", stdout=StringIO())
