"""Notifications through an outbox: each alert change to announce is a ``NotificationDelivery`` row
written in the change's transaction, in the alert's ``NotificationGroup``; the broadcaster's loop
sends each group's queued changes as one notice (``notification_sender``), so ingest never waits on
a receiver and alerts of one cause page once."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from monitoring.models import Alert, NotificationDelivery, NotificationGroup
from monitoring.notify import grouping, transports
from monitoring.notify.notice import ACKNOWLEDGED, FIRED, RESOLVED, TEST_SUMMARY, Notice

__all__ = [
    "TEST_SUMMARY",
    "TestNotificationResult",
    "enqueue_follow_up",
    "enqueue_notification",
    "send_test_notification",
    "should_notify",
    "timing",
]

logger = logging.getLogger(__name__)
NOTIFY_SEVERITIES = {Alert.Severity.CRITICAL, Alert.Severity.HIGH}
FOLLOW_UPS = (ACKNOWLEDGED, RESOLVED)


def timing() -> grouping.GroupTiming:
    return grouping.GroupTiming(
        wait=timedelta(seconds=settings.MONITORING_NOTIFY_GROUP_WAIT),
        interval=timedelta(seconds=settings.MONITORING_NOTIFY_GROUP_INTERVAL),
        repeat=timedelta(seconds=settings.MONITORING_NOTIFY_REPEAT_INTERVAL),
    )


def should_notify(alert: Alert) -> bool:
    """New critical/high alerts page, unless silenced or inhibited (a symptom of a failing scraper)."""
    return (
        transports.configured() and alert.severity in NOTIFY_SEVERITIES and not alert.silenced and not alert.inhibited
    )


def _group_for(alert: Alert) -> NotificationGroup:
    key = grouping.group_key(
        by=settings.MONITORING_NOTIFY_GROUP_BY,
        alert_id=alert.pk,
        rule_name=alert.rule_name,
        source=alert.source,
        metric=alert.rule.metric if alert.rule_id else "",
    )
    group, _ = NotificationGroup.objects.get_or_create(key=key.key, defaults={"labels": key.labels})
    return group


def _queue(*, alert: Alert, event: str, group: NotificationGroup) -> None:
    """Queue the change and, when the group has nothing due yet, schedule its next notice."""
    now = timezone.now()
    NotificationDelivery.objects.create(alert=alert, event=event, group=group, next_attempt_at=now)
    locked = NotificationGroup.objects.select_for_update().get(pk=group.pk)
    if locked.due_at is None:
        locked.due_at = grouping.first_due(
            now=now, open_incident=locked.open, last_sent_at=locked.last_sent_at, timing=timing()
        )
        locked.save(update_fields=["due_at"])


def enqueue_notification(*, alert: Alert, event: str) -> None:
    """Page: queue the firing notice in the alert's group (the evaluator, which is also the sender,
    decides by its own configuration). Call inside the transaction that opens the alert."""
    if transports.configured():
        _queue(alert=alert, event=event, group=_group_for(alert))


def was_paged(alert: Alert) -> bool:
    """Whether a firing notice was queued (or sent) for this alert: its own delivery record says so."""
    return NotificationDelivery.objects.filter(alert=alert, event=FIRED).exists()


def enqueue_follow_up(*, alert: Alert, event: str) -> bool:
    """Queue the acknowledgement or resolution notice of a paged alert, once; returns whether one was queued.

    Decided by the alert's delivery record, not by this process's configuration: the web process that
    resolves an alert may have no URL while the broadcaster that pages does (it sends the row with its
    own). The notice goes to the group the firing went to. Call inside the transaction that changes the
    alert, with the alert row locked.
    """
    if event not in FOLLOW_UPS:
        raise ValueError(f"not a follow-up event: {event!r}")
    fired = NotificationDelivery.objects.filter(alert=alert, event=FIRED).order_by("pk").first()
    if fired is None or NotificationDelivery.objects.filter(alert=alert, event=event).exists():
        return False
    _queue(alert=alert, event=event, group=fired.group or _group_for(alert))
    return True


@dataclass(frozen=True)
class TestNotificationResult:
    """What the receiver answered to a test notification: ``ok`` for a 2xx, else ``error`` says why."""

    __test__ = False  # not a pytest test class, despite the name

    ok: bool
    status_code: int | None
    elapsed_ms: float
    error: str | None
    url_host: str | None


def send_test_notification() -> TestNotificationResult:
    """Send a marked test notice through the configured transport, the way alert notices go (same
    format, timeout, and for a Slack bot the same API). Writes no alert, delivery or group; failures
    are in the result, not raised."""
    transport = transports.from_settings()
    host = transports.receiver_host()
    if transport is None:
        return TestNotificationResult(
            ok=False,
            status_code=None,
            elapsed_ms=0.0,
            error="no webhook configured (MONITORING_WEBHOOK_URL is unset, and no Slack bot token and channel)",
            url_host=None,
        )
    notice = Notice(group_key=None, group_labels={}, changes=(), alerts=(), first=True, test=True)
    started = time.monotonic()
    status_code: int | None = None
    error: str | None = None
    try:
        status_code = transport.send(notice, message=None).status_code
    except transports.DeliveryError as exc:
        status_code, error = exc.status_code, str(exc)[:1000]
    elapsed_ms = round((time.monotonic() - started) * 1000, 1)
    if error:
        logger.warning("test notification to %s failed: %s", host, error)
    return TestNotificationResult(
        ok=error is None, status_code=status_code, elapsed_ms=elapsed_ms, error=error, url_host=host
    )
