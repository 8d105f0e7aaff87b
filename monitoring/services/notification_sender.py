"""The sender: takes each notification group that is due, sends its queued changes as one notice
through the configured transport, and records the outcome (retries with backoff, give-up, the Slack
message to edit next time). Runs in the active broadcaster's notifier loop, never in a request."""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from monitoring.models import Alert, NotificationDelivery, NotificationGroup
from monitoring.notify import grouping, transports
from monitoring.notify.notice import FIRED, FIRING_STATUS, RESOLVED, Notice, changes_of
from monitoring.selectors import alert_dict
from monitoring.services.notifications import timing

logger = logging.getLogger(__name__)
BACKOFF_BASE_SECONDS = 2.0
BACKOFF_CAP_SECONDS = 600.0
BATCH = 50
CLAIM = timedelta(seconds=60)
PENDING = NotificationDelivery.Status.PENDING


def backoff(attempts: int) -> timedelta:
    delay = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempts - 1))
    # Jitter keeps many failed groups from retrying in lockstep.
    return timedelta(seconds=delay * (0.5 + secrets.randbelow(1000) / 2000))


def claim_lease() -> timedelta:
    """How long a claimed group stays this sender's: longer than one send can take (a Slack edit may
    fall back to a new post: two requests), so no other sender takes it mid-send; short enough that a
    dead sender's claim lapses soon."""
    return max(CLAIM, timedelta(seconds=3 * settings.MONITORING_WEBHOOK_TIMEOUT + 5))


def claim_next(now: datetime, *, skip: frozenset[int] | set[int] = frozenset()) -> NotificationGroup | None:
    """Take the next due group for this sender, one at a time: a claimed batch would outlive its lease
    while the first ones are sent, and another sender would send the rest twice."""
    with transaction.atomic():
        group = (
            NotificationGroup.objects.select_for_update(skip_locked=True)
            .filter(Q(due_at__lte=now) | Q(repeat_at__lte=now))
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))
            .exclude(pk__in=skip)
            .order_by(F("due_at").asc(nulls_last=True), "repeat_at")
            .first()
        )
        if group is not None:
            group.claimed_until = now + claim_lease()
            group.save(update_fields=["claimed_until"])
    return group


def _incident_alerts(group: NotificationGroup) -> list[Alert]:
    """The group's current incident: alerts it announced (or is announcing) as fired whose resolution
    it has not yet sent."""
    fired = NotificationDelivery.objects.filter(group=group, event=FIRED).values("alert_id")
    closed = NotificationDelivery.objects.filter(
        group=group, event=RESOLVED, status=NotificationDelivery.Status.SENT
    ).values("alert_id")
    return list(
        Alert.objects.filter(pk__in=fired)
        .exclude(pk__in=closed)
        .select_related("acknowledged_by", "resolved_by")
        .order_by("pk")
    )


def compose(group: NotificationGroup, *, now: datetime) -> tuple[Notice, list[int]] | None:
    """The notice a due group sends and the deliveries it carries; None when there is nothing to say
    (a reminder for a group whose alerts were acknowledged or silenced meanwhile)."""
    pending = list(
        NotificationDelivery.objects.filter(group=group, status=PENDING)
        .order_by("pk")
        .values_list("pk", "alert_id", "event")
    )
    alerts = _incident_alerts(group)
    repeat = not pending
    if repeat and not any(a.state == Alert.State.FIRING and not a.silenced for a in alerts):
        return None
    notice = Notice(
        group_key=group.key,
        group_labels=group.labels,
        changes=changes_of([(alert_id, event) for _, alert_id, event in pending]),
        alerts=tuple(alert_dict(a) for a in alerts),
        first=not group.open,
        repeat=repeat,
    )
    return notice, [pk for pk, _, _ in pending]


def _release(group: NotificationGroup, **fields) -> None:
    NotificationGroup.objects.filter(pk=group.pk).update(claimed_until=None, **fields)


def _record_sent(group: NotificationGroup, notice: Notice, delivery_ids: list[int], sent: transports.Sent) -> None:
    sent_at = timezone.now()
    with transaction.atomic():
        NotificationDelivery.objects.filter(pk__in=delivery_ids).update(
            status=NotificationDelivery.Status.SENT,
            sent_at=sent_at,
            next_attempt_at=sent_at,
            attempts=F("attempts") + 1,
        )
        locked = NotificationGroup.objects.select_for_update().get(pk=group.pk)
        locked.open = notice.status == FIRING_STATUS
        locked.last_sent_at = sent_at
        locked.notices_sent += 1
        locked.claimed_until = None
        firing = any(a["state"] == Alert.State.FIRING and not a["silenced"] for a in notice.alerts)
        locked.repeat_at = grouping.repeat_due(sent_at=sent_at, still_firing=locked.open and firing, timing=timing())
        message = sent.message if locked.open else None
        locked.slack_channel = message.channel if message else ""
        locked.slack_ts = message.ts if message else ""
        # Changes queued while this notice was on its way go in the next one, an interval later.
        more = NotificationDelivery.objects.filter(group=locked, status=PENDING).exists()
        locked.due_at = (
            grouping.first_due(now=sent_at, open_incident=locked.open, last_sent_at=sent_at, timing=timing())
            if more
            else None
        )
        locked.save()


def _record_failed(
    group: NotificationGroup, delivery_ids: list[int], error: transports.DeliveryError, outcome: dict[str, int]
) -> None:
    """Every delivery of the notice counts an attempt; those out of attempts are given up, the rest and
    the group retry after a backoff (or the receiver's ``Retry-After``, if longer)."""
    now = timezone.now()
    reason = str(error)[:1000]
    most = 0
    with transaction.atomic():
        for delivery in NotificationDelivery.objects.select_for_update().filter(pk__in=delivery_ids):
            delivery.attempts += 1
            delivery.last_error = reason
            most = max(most, delivery.attempts)
            if delivery.attempts >= settings.MONITORING_WEBHOOK_MAX_ATTEMPTS:
                delivery.status = NotificationDelivery.Status.FAILED
                outcome["failed"] += 1
                logger.error("notification %s gave up after %s attempts: %s", delivery.pk, delivery.attempts, reason)
            else:
                outcome["retried"] += 1
                logger.warning("notification %s failed (attempt %s): %s", delivery.pk, delivery.attempts, reason)
            delivery.save(update_fields=["attempts", "last_error", "status"])
        wait = max(backoff(max(most, 1)), timedelta(seconds=error.retry_after or 0))
        retry_at = now + wait
        NotificationDelivery.objects.filter(pk__in=delivery_ids, status=PENDING).update(next_attempt_at=retry_at)
        still_pending = NotificationDelivery.objects.filter(group=group, status=PENDING).exists()
        if delivery_ids:
            _release(group, due_at=retry_at if still_pending else None)
        else:  # a reminder that failed: try it again later, it counts no delivery
            outcome["retried"] += 1
            logger.warning("reminder for group %s failed: %s", group.key, reason)
            _release(group, repeat_at=retry_at)


def deliver_due(*, now: datetime | None = None) -> dict[str, int]:
    """Send due group notices once (HTTP outside any transaction); returns counts of the deliveries
    (alert changes) sent, retried and given up, and of the notices sent."""
    outcome = {"sent": 0, "retried": 0, "failed": 0, "notices": 0}
    transport = transports.from_settings()
    if transport is None:
        return outcome
    now = now or timezone.now()
    tried: set[int] = set()  # once per call: a retry is due again only in a later call
    for _ in range(BATCH):
        group = claim_next(now, skip=tried)
        if group is None:
            break
        tried.add(group.pk)
        composed = compose(group, now=now)
        if composed is None:
            _release(group, repeat_at=None)
            continue
        notice, delivery_ids = composed
        previous = (
            transports.MessageRef(channel=group.slack_channel, ts=group.slack_ts)
            if group.open and group.slack_ts
            else None
        )
        try:
            sent = transport.send(notice, message=previous)
        except transports.DeliveryError as exc:
            _record_failed(group, delivery_ids, exc, outcome)
        else:
            _record_sent(group, notice, delivery_ids, sent)
            outcome["sent"] += len(delivery_ids)
            outcome["notices"] += 1
    return outcome
