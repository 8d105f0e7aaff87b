"""Grouping against a real local receiver: one notice per group, group_wait, group_interval,
repeat_interval, and the incident closing when its last alert is resolved."""

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.models import NotificationDelivery, NotificationGroup
from monitoring.services.alerts import acknowledge_alert, resolve_alert
from monitoring.services.notification_sender import deliver_due
from monitoring.services.notifications import enqueue_notification
from monitoring.tests.factories import AlertFactory
from monitoring.tests.webhook_receiver import Receiver

pytestmark = pytest.mark.django_db
WAIT, INTERVAL, REPEAT = 30, 300, 3600


@pytest.fixture
def receiver(settings):
    with Receiver() as r:
        settings.MONITORING_WEBHOOK_URL = r.url
        settings.MONITORING_WEBHOOK_FORMAT = "json"
        settings.MONITORING_NOTIFY_GROUP_BY = "source"
        settings.MONITORING_NOTIFY_GROUP_WAIT = WAIT
        settings.MONITORING_NOTIFY_GROUP_INTERVAL = INTERVAL
        settings.MONITORING_NOTIFY_REPEAT_INTERVAL = REPEAT
        yield r


def bodies(receiver) -> list[dict]:
    return [body for _, body in receiver.requests]


def fire(**fields):
    alert = AlertFactory(**fields)
    enqueue_notification(alert=alert, event="fired")
    return alert


def later(seconds: float):
    return timezone.now() + timedelta(seconds=seconds)


def test_alerts_of_one_source_raised_within_group_wait_go_out_as_one_notice(receiver):
    geo = fire(source="gdelt", rule_name="geo-low")
    val = fire(source="gdelt", rule_name="val-low")
    other = fire(source="acled")
    assert deliver_due(now=later(WAIT - 5))["notices"] == 0, "sent before group_wait"
    assert deliver_due(now=later(WAIT + 1)) == {"sent": 3, "retried": 0, "failed": 0, "notices": 2}
    by_key = {body["group_key"]: body for body in bodies(receiver)}
    assert set(by_key) == {"source=gdelt", "source=acled"}
    gdelt = by_key["source=gdelt"]
    assert gdelt["event"] == "fired" and gdelt["status"] == "firing"
    assert sorted(a["id"] for a in gdelt["alerts"]) == sorted([geo.pk, val.pk])
    assert sorted(c["alert_id"] for c in gdelt["changes"]) == sorted([geo.pk, val.pk])
    assert [a["id"] for a in by_key["source=acled"]["alerts"]] == [other.pk]


def test_a_new_alert_in_a_paged_group_waits_for_group_interval_and_comes_with_the_open_ones(receiver):
    first = fire(source="gdelt", rule_name="geo-low")
    deliver_due(now=later(WAIT + 1))
    second = fire(source="gdelt", rule_name="val-low")
    assert deliver_due(now=later(WAIT + 1))["notices"] == 0, "sooner than group_interval after the last notice"
    assert deliver_due(now=later(INTERVAL + 1))["notices"] == 1
    latest = bodies(receiver)[-1]
    assert [c["alert_id"] for c in latest["changes"]] == [second.pk]
    assert sorted(a["id"] for a in latest["alerts"]) == sorted([first.pk, second.pk])


def test_a_group_still_firing_is_repeated_after_repeat_interval_and_an_acknowledged_one_is_not(receiver):
    alert = fire(source="gdelt")
    deliver_due(now=later(WAIT + 1))
    assert deliver_due(now=later(REPEAT - 60))["notices"] == 0
    assert deliver_due(now=later(REPEAT + 1)) == {"sent": 0, "retried": 0, "failed": 0, "notices": 1}
    reminder = bodies(receiver)[-1]
    assert reminder["event"] == "repeat" and reminder["changes"] == []
    assert reminder["text"].startswith("[STILL FIRING (CRITICAL)] source=gdelt")
    acknowledge_alert(alert_id=alert.pk, user=None)
    deliver_due(now=later(REPEAT + INTERVAL + 2))  # the acknowledgement notice
    assert bodies(receiver)[-1]["event"] == "acknowledged"
    count = len(receiver.requests)
    assert deliver_due(now=later(3 * REPEAT))["notices"] == 0
    assert len(receiver.requests) == count


def test_resolving_the_last_alert_closes_the_incident_and_the_next_one_waits_group_wait_again(receiver):
    one, two = fire(source="gdelt", rule_name="a"), fire(source="gdelt", rule_name="b")
    deliver_due(now=later(WAIT + 1))
    resolve_alert(alert_id=one.pk, user=None)
    deliver_due(now=later(INTERVAL + 1))
    partly = bodies(receiver)[-1]
    assert (partly["event"], partly["status"]) == ("resolved", "firing")
    resolve_alert(alert_id=two.pk, user=None)
    deliver_due(now=later(2 * INTERVAL + 2))
    closing = bodies(receiver)[-1]
    assert (closing["event"], closing["status"]) == ("resolved", "resolved")
    assert [a["id"] for a in closing["alerts"]] == [two.pk], "an alert whose resolution was sent leaves the incident"
    group = NotificationGroup.objects.get(key="source=gdelt")
    assert not group.open and group.repeat_at is None and group.due_at is None
    third = fire(source="gdelt", rule_name="c")
    assert deliver_due(now=later(WAIT - 5))["notices"] == 0
    deliver_due(now=later(WAIT + 1))
    reopened = bodies(receiver)[-1]
    assert [a["id"] for a in reopened["alerts"]] == [third.pk]
    assert len(receiver.requests) == 4


def test_a_follow_up_goes_to_the_group_its_firing_went_to_even_if_grouping_changed(receiver, settings):
    alert = fire(source="gdelt", rule_name="geo-low")
    deliver_due(now=later(WAIT + 1))
    settings.MONITORING_NOTIFY_GROUP_BY = "rule"
    resolve_alert(alert_id=alert.pk, user=None)
    deliver_due(now=later(INTERVAL + 1))
    assert [body["group_key"] for body in bodies(receiver)] == ["source=gdelt", "source=gdelt"]
    assert bodies(receiver)[-1]["status"] == "resolved"


def test_grouping_by_rule_puts_one_rule_over_several_sources_in_one_notice(receiver, settings):
    settings.MONITORING_NOTIFY_GROUP_BY = "rule"
    fire(source="gdelt", rule_name="source-stale")
    fire(source="acled", rule_name="source-stale")
    deliver_due(now=later(WAIT + 1))
    (body,) = bodies(receiver)
    assert body["group_key"] == "rule=source-stale" and len(body["alerts"]) == 2


def test_a_failed_notice_retries_every_change_it_carries_and_nothing_is_sent_twice(receiver):
    receiver.status = 503
    fire(source="gdelt", rule_name="a")
    fire(source="gdelt", rule_name="b")
    assert deliver_due(now=later(WAIT + 1)) == {"sent": 0, "retried": 2, "failed": 0, "notices": 0}
    receiver.status = 204
    assert NotificationGroup.objects.get().due_at > timezone.now()
    assert deliver_due(now=timezone.now())["notices"] == 0, "retried before its backoff"
    assert deliver_due(now=later(WAIT + 60)) == {"sent": 2, "retried": 0, "failed": 0, "notices": 1}
    assert set(NotificationDelivery.objects.values_list("status", "attempts")) == {("sent", 2)}
    assert deliver_due(now=later(WAIT + 120))["notices"] == 0
