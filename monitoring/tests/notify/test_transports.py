"""Transports against real local receivers: the webhook's JSON or Slack body, the Slack bot's post,
update and thread reply, what counts as a failed delivery, and which transport the settings pick."""

import pytest

from monitoring.notify.notice import Change, Notice, json_payload, slack_follow_up, slack_message
from monitoring.notify.transports import (
    DeliveryError,
    MessageRef,
    SlackBot,
    Webhook,
    from_settings,
    post_json,
    receiver_host,
)
from monitoring.tests.slack_stub import TOKEN, SlackStub
from monitoring.tests.webhook_receiver import Receiver, unreachable_url


def _notice(*, first: bool = True, repeat: bool = False, state: str = "firing") -> Notice:
    alert = {"id": 7, "state": state, "severity": "critical", "summary": "geocoding 60 %", "silenced": False}
    return Notice(
        group_key="source=gdelt",
        group_labels={"source": "gdelt"},
        alerts=(alert,),
        changes=() if repeat else (Change(alert_id=7, event="fired" if state == "firing" else state),),
        first=first,
        repeat=repeat,
    )


@pytest.fixture
def stub():
    with SlackStub() as s:
        yield s


def _bot(stub: SlackStub, token: str = TOKEN) -> SlackBot:
    return SlackBot(api_url=stub.api_url, token=token, channel="#alerts", timeout=5)


def test_a_json_webhook_posts_the_generic_payload():
    notice = _notice()
    with Receiver() as receiver:
        sent = Webhook(url=receiver.url, style="json", timeout=5).send(notice, message=None)
    assert sent.status_code == 204 and sent.message is None
    assert receiver.requests == [("/hooks/secret-token-123", json_payload(notice))]


def test_a_slack_webhook_posts_the_full_message_first_then_short_follow_ups():
    first, later = _notice(), _notice(first=False, state="resolved")
    with Receiver(status=200) as receiver:
        hook = Webhook(url=receiver.url, style="slack", timeout=5)
        hook.send(first, message=None)
        hook.send(later, message=None)
    assert [body for _, body in receiver.requests] == [slack_message(first), slack_follow_up(later)]


def test_a_receiver_error_is_a_delivery_error_with_its_status():
    with Receiver(status=500) as receiver, pytest.raises(DeliveryError) as caught:
        Webhook(url=receiver.url, style="json", timeout=5).send(_notice(), message=None)
    assert caught.value.status_code == 500
    assert "HTTP 500" in str(caught.value)


def test_a_refused_connection_or_a_non_http_url_is_a_delivery_error_without_status():
    with pytest.raises(DeliveryError) as refused:
        post_json(unreachable_url(), {}, timeout=5)
    assert refused.value.status_code is None
    with pytest.raises(DeliveryError, match="not an http"):
        post_json("file:///etc/passwd", {}, timeout=5)


def test_the_slack_bot_posts_a_new_group_and_edits_it_afterwards(stub):
    bot = _bot(stub)
    sent = bot.send(_notice(), message=None)
    assert sent.message == MessageRef(channel="C0ALERTS", ts="1700000000.000001")
    resolved = _notice(first=False, state="resolved")
    again = bot.send(resolved, message=sent.message)
    assert again.message == sent.message
    assert stub.methods() == ["chat.postMessage", "chat.update"]
    update = stub.calls[1][1]
    assert (update["channel"], update["ts"], update["text"]) == (
        "C0ALERTS",
        "1700000000.000001",
        slack_message(resolved)["text"],
    )


def test_a_slack_bot_reminder_is_a_reply_in_the_groups_thread(stub):
    ref = MessageRef(channel="C0ALERTS", ts="1700000000.000009")
    _bot(stub).send(_notice(first=False, repeat=True), message=ref)
    ((method, body),) = stub.calls
    assert (method, body["channel"], body["thread_ts"]) == ("chat.postMessage", "C0ALERTS", ref.ts)


def test_a_deleted_slack_message_is_replaced_by_a_new_one(stub):
    stub.deleted.add("1700000000.000005")
    sent = _bot(stub).send(_notice(first=False), message=MessageRef(channel="C0ALERTS", ts="1700000000.000005"))
    assert stub.methods() == ["chat.postMessage"]
    assert sent.message == MessageRef(channel="C0ALERTS", ts="1700000000.000001")


@pytest.mark.parametrize(("token", "fail"), [("xoxb-wrong", None), (TOKEN, "channel_not_found")])
def test_a_slack_answer_with_ok_false_is_a_delivery_error(stub, token, fail):
    if fail:
        stub.fail_next.append(fail)
    with pytest.raises(DeliveryError, match=fail or "invalid_auth") as caught:
        _bot(stub, token=token).send(_notice(), message=None)
    assert caught.value.status_code == 200
    assert stub.calls == []


def test_settings_choose_the_slack_bot_over_the_webhook_and_nothing_without_either(settings):
    settings.MONITORING_WEBHOOK_URL = "https://user:secret@hooks.example.org/T0/abc"
    settings.MONITORING_WEBHOOK_FORMAT = "slack"
    settings.MONITORING_SLACK_BOT_TOKEN = ""
    settings.MONITORING_SLACK_CHANNEL = ""
    hook = from_settings()
    assert isinstance(hook, Webhook) and hook.style == "slack"
    assert receiver_host() == "hooks.example.org"
    settings.MONITORING_SLACK_BOT_TOKEN = TOKEN
    settings.MONITORING_SLACK_CHANNEL = "#alerts"
    settings.MONITORING_SLACK_API_URL = "https://slack.com/api"
    assert isinstance(from_settings(), SlackBot)
    assert receiver_host() == "slack.com #alerts"
    settings.MONITORING_SLACK_BOT_TOKEN = ""
    settings.MONITORING_WEBHOOK_URL = ""
    assert from_settings() is None
    assert receiver_host() is None
