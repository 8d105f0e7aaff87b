"""The Slack bot transport against a local stub of Slack's Web API: one message per group, edited
in place on acknowledge and resolve, a reminder in its thread, a new message for a new incident."""

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.models import NotificationGroup
from monitoring.services.alerts import acknowledge_alert, resolve_alert
from monitoring.services.notification_sender import deliver_due
from monitoring.services.notifications import TEST_SUMMARY, enqueue_notification, send_test_notification
from monitoring.tests.factories import AlertFactory
from monitoring.tests.slack_stub import TOKEN, SlackStub

pytestmark = pytest.mark.django_db
REPEAT = 3600


@pytest.fixture
def slack(settings):
    with SlackStub() as stub:
        settings.MONITORING_WEBHOOK_URL = None
        settings.MONITORING_SLACK_BOT_TOKEN = TOKEN
        settings.MONITORING_SLACK_CHANNEL = "#data-alerts"
        settings.MONITORING_SLACK_API_URL = stub.api_url
        settings.MONITORING_NOTIFY_REPEAT_INTERVAL = REPEAT
        yield stub


def fire(**fields):
    alert = AlertFactory(**fields)
    enqueue_notification(alert=alert, event="fired")
    return alert


def send(seconds: float = 1) -> dict:
    return deliver_due(now=timezone.now() + timedelta(seconds=seconds))


def test_a_group_is_one_message_edited_in_place_on_acknowledge_and_resolve(slack):
    geo, val = fire(source="gdelt", rule_name="geo-low"), fire(source="gdelt", rule_name="val-low")
    assert send()["notices"] == 1
    ((method, posted),) = slack.calls
    assert method == "chat.postMessage" and posted["channel"] == "#data-alerts"
    assert posted["text"] == "[CRITICAL] source=gdelt: 2 firing"
    assert "geo-low for gdelt" in posted["blocks"][1]["text"]["text"]
    assert "val-low for gdelt" in posted["blocks"][1]["text"]["text"]
    ts = NotificationGroup.objects.get().slack_ts
    assert ts == "1700000000.000001"

    acknowledge_alert(alert_id=geo.pk, user=None)
    send()
    method, update = slack.calls[-1]
    assert method == "chat.update"
    assert (update["channel"], update["ts"]) == ("C0ALERTS", ts), "edits the posted message by Slack's channel id"
    assert update["text"] == "[CRITICAL] source=gdelt: 1 firing, 1 acknowledged"

    resolve_alert(alert_id=geo.pk, user=None)
    resolve_alert(alert_id=val.pk, user=None)
    send()
    method, closing = slack.calls[-1]
    assert (method, closing["ts"]) == ("chat.update", ts)
    assert closing["text"] == "[RESOLVED] source=gdelt: 2 resolved"
    assert slack.methods() == ["chat.postMessage", "chat.update", "chat.update"]
    assert NotificationGroup.objects.get().slack_ts == "", "a closed incident's message is never edited again"


def test_a_new_incident_in_the_same_group_gets_a_new_message(slack):
    first = fire(source="gdelt")
    send()
    resolve_alert(alert_id=first.pk, user=None)
    send()
    fire(source="gdelt")
    send()
    assert slack.methods() == ["chat.postMessage", "chat.update", "chat.postMessage"]
    assert slack.calls[-1][1]["text"] == "[CRITICAL] source=gdelt: 1 firing"
    assert NotificationGroup.objects.get().slack_ts == "1700000000.000002"


def test_a_reminder_is_a_reply_in_the_groups_thread(slack):
    fire(source="gdelt", severity="high")
    send()
    assert send(REPEAT + 1)["notices"] == 1
    method, reply = slack.calls[-1]
    assert method == "chat.postMessage"
    assert (reply["channel"], reply["thread_ts"]) == ("C0ALERTS", "1700000000.000001")
    assert reply["text"].startswith("[STILL FIRING (HIGH)] source=gdelt")


def test_a_message_deleted_in_slack_is_posted_anew_instead_of_lost(slack):
    alert = fire(source="gdelt")
    send()
    slack.deleted.add(NotificationGroup.objects.get().slack_ts)
    acknowledge_alert(alert_id=alert.pk, user=None)
    assert send()["notices"] == 1
    assert slack.methods() == ["chat.postMessage", "chat.postMessage"]
    assert NotificationGroup.objects.get().slack_ts == "1700000000.000002"


def test_a_refused_call_is_retried_with_slacks_error_recorded(slack):
    slack.fail_next.append("ratelimited")
    alert = fire(source="gdelt")
    assert send() == {"sent": 0, "retried": 1, "failed": 0, "notices": 0}
    assert "Slack chat.postMessage refused: ratelimited" in alert.deliveries.get().last_error
    assert send(60)["notices"] == 1
    assert slack.methods() == ["chat.postMessage"]


def test_the_test_notification_goes_through_the_bot_and_reports_slacks_answer(slack, settings):
    result = send_test_notification()
    assert result.ok and result.status_code == 200
    assert result.url_host == f"127.0.0.1:{slack.server.server_address[1]} #data-alerts"
    ((method, body),) = slack.calls
    assert method == "chat.postMessage" and body["text"] == TEST_SUMMARY
    settings.MONITORING_SLACK_BOT_TOKEN = "xoxb-wrong"  # noqa: S105 (a wrong test token)
    refused = send_test_notification()
    assert not refused.ok and refused.error == "Slack chat.postMessage refused: invalid_auth"
