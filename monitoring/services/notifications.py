"""Webhook notifications through an outbox: rows are written with the alert change, in its
transaction, and sent later by the broadcaster's loop with retries, so ingest never waits on a webhook."""

from __future__ import annotations

import json
import logging
import secrets
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from monitoring.models import Alert, NotificationDelivery
from monitoring.selectors import alert_dict

logger = logging.getLogger(__name__)
NOTIFY_SEVERITIES = {Alert.Severity.CRITICAL, Alert.Severity.HIGH}
BACKOFF_BASE_SECONDS = 2.0
BACKOFF_CAP_SECONDS = 600.0
BATCH = 50
CLAIM = timedelta(seconds=60)


def should_notify(alert: Alert) -> bool:
    """New critical/high alerts page, unless silenced or inhibited (a symptom of a failing scraper)."""
    return (
        bool(settings.MONITORING_WEBHOOK_URL)
        and alert.severity in NOTIFY_SEVERITIES
        and not alert.silenced
        and not alert.inhibited
    )


def enqueue_notification(*, alert: Alert, event: str) -> None:
    """Page: queue the firing notice (the evaluator, which is also the sender, decides by its own URL)."""
    if settings.MONITORING_WEBHOOK_URL:
        NotificationDelivery.objects.create(alert=alert, event=event)


FOLLOW_UPS = ("acknowledged", "resolved")


def was_paged(alert: Alert) -> bool:
    """Whether a firing notice was queued (or sent) for this alert: its own delivery record says so."""
    return NotificationDelivery.objects.filter(alert=alert, event="fired").exists()


def enqueue_follow_up(*, alert: Alert, event: str) -> bool:
    """Queue the acknowledgement or resolution notice of a paged alert, once; returns whether one was queued.

    Decided by the alert's delivery record, not by this process's ``MONITORING_WEBHOOK_URL``: the web
    process that resolves an alert may have no URL while the broadcaster that pages does (it sends the
    row with its own). Call inside the transaction that changes the alert, with the alert row locked.
    """
    if event not in FOLLOW_UPS:
        raise ValueError(f"not a follow-up event: {event!r}")
    if not was_paged(alert) or NotificationDelivery.objects.filter(alert=alert, event=event).exists():
        return False
    NotificationDelivery.objects.create(alert=alert, event=event)
    return True


VERBS = {"resolved": "RESOLVED", "acknowledged": "ACKNOWLEDGED"}


def payload(*, alert: Alert, event: str, style: str) -> dict[str, Any]:
    verb = VERBS.get(event) or alert.severity.upper()
    text = f"[{verb}] {alert.summary}"
    if style == "slack":
        return {
            "text": text,
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": f"*{verb}* {alert.summary}"}},
                {
                    "type": "context",
                    "elements": [
                        {"type": "mrkdwn", "text": f"rule `{alert.rule_name}` · source `{alert.source or 'all'}`"}
                    ],
                },
            ],
        }
    return {"event": event, "text": text, "alert": alert_dict(alert)}


def _post(url: str, body: dict[str, Any], timeout: float) -> int:
    """POST ``body`` as JSON; returns the receiver's 2xx status, raises ``OSError`` / ``ValueError`` otherwise."""
    if not url.startswith(("http://", "https://")):
        raise ValueError("MONITORING_WEBHOOK_URL must be an http(s) URL")
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (scheme checked above)
        if not 200 <= response.status < 300:
            raise urllib.error.HTTPError(url, response.status, "webhook refused", response.headers, None)
        return response.status


TEST_SUMMARY = "[TEST] Conflict Monitor test notification — no action needed"


@dataclass(frozen=True)
class TestNotificationResult:
    """What the receiver answered to a test notification: ``ok`` for a 2xx, else ``error`` says why."""

    __test__ = False  # not a pytest test class, despite the name

    ok: bool
    status_code: int | None
    elapsed_ms: float
    error: str | None
    url_host: str | None


def test_payload(*, style: str) -> dict[str, Any]:
    """A notification that says it is a test, in the same format alerts use."""
    if style == "slack":
        return {
            "text": TEST_SUMMARY,
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": f"*TEST* {TEST_SUMMARY}"}},
                {
                    "type": "context",
                    "elements": [{"type": "mrkdwn", "text": "sent by `send_test_notification` · no alert"}],
                },
            ],
        }
    return {"event": "test", "test": True, "text": TEST_SUMMARY, "alert": None}


def webhook_host(url: str | None) -> str | None:
    """The receiver's host (and port) only: a webhook URL's path and query often hold its secret."""
    if not url:
        return None
    try:
        return urlsplit(url).netloc.rpartition("@")[2] or None
    except ValueError:
        return None


def send_test_notification() -> TestNotificationResult:
    """POST a marked test notification through the delivery path alerts use (``_post``, with the configured
    URL, format and timeout). Writes no Alert or NotificationDelivery; failures are in the result, not raised."""
    url = settings.MONITORING_WEBHOOK_URL
    host = webhook_host(url)
    if not url:
        return TestNotificationResult(
            ok=False,
            status_code=None,
            elapsed_ms=0.0,
            error="no webhook configured (MONITORING_WEBHOOK_URL is unset)",
            url_host=None,
        )
    body = test_payload(style=settings.MONITORING_WEBHOOK_FORMAT)
    started = time.monotonic()
    status_code: int | None = None
    error: str | None = None
    try:
        status_code = _post(url, body, settings.MONITORING_WEBHOOK_TIMEOUT)
    except urllib.error.HTTPError as exc:
        status_code = exc.code
        error = f"the receiver answered HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        error = f"{type(exc).__name__}: {exc}"[:1000]
    elapsed_ms = round((time.monotonic() - started) * 1000, 1)
    if error:
        logger.warning("test notification to %s failed: %s", host, error)
    return TestNotificationResult(
        ok=error is None, status_code=status_code, elapsed_ms=elapsed_ms, error=error, url_host=host
    )


def _backoff(attempts: int) -> timedelta:
    delay = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempts - 1))
    # Jitter keeps many failed deliveries from retrying in lockstep.
    return timedelta(seconds=delay * (0.5 + secrets.randbelow(1000) / 2000))


def claim_lease() -> timedelta:
    """How long a claimed delivery stays this sender's: longer than one send can take, so no other
    sender picks it up mid-send; short enough that a dead sender's claim lapses soon."""
    return max(CLAIM, timedelta(seconds=2 * settings.MONITORING_WEBHOOK_TIMEOUT + 5))


def _claim_next(now: datetime, *, skip: set[int] = frozenset()) -> NotificationDelivery | None:
    """Take the next due delivery for this sender, one at a time: a claimed batch would outlive its
    lease while the first ones are sent, and another sender would send the rest twice."""
    with transaction.atomic():
        delivery = (
            NotificationDelivery.objects.select_for_update(skip_locked=True)
            .select_related("alert")
            .filter(status=NotificationDelivery.Status.PENDING, next_attempt_at__lte=now)
            .exclude(pk__in=skip)
            .order_by("next_attempt_at")
            .first()
        )
        if delivery is not None:
            NotificationDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=now + claim_lease())
    return delivery


def deliver_due_notifications(*, now: datetime | None = None) -> dict[str, int]:
    """Send due deliveries once (HTTP outside any transaction); returns counts of sent, retried, failed."""
    url = settings.MONITORING_WEBHOOK_URL
    outcome = {"sent": 0, "retried": 0, "failed": 0}
    if not url:
        return outcome
    now = now or timezone.now()
    style = settings.MONITORING_WEBHOOK_FORMAT
    tried: set[int] = set()  # once per call: a retry is due again only in a later call
    for _ in range(BATCH):
        delivery = _claim_next(now, skip=tried)
        if delivery is None:
            break
        tried.add(delivery.pk)
        delivery.attempts += 1
        try:
            _post(
                url,
                payload(alert=delivery.alert, event=delivery.event, style=style),
                settings.MONITORING_WEBHOOK_TIMEOUT,
            )
        except (OSError, ValueError) as exc:
            delivery.last_error = f"{type(exc).__name__}: {exc}"[:1000]
            if delivery.attempts >= settings.MONITORING_WEBHOOK_MAX_ATTEMPTS:
                delivery.status = NotificationDelivery.Status.FAILED
                outcome["failed"] += 1
                logger.error(
                    "webhook delivery %s gave up after %s attempts: %s",
                    delivery.pk,
                    delivery.attempts,
                    delivery.last_error,
                )
            else:
                delivery.next_attempt_at = timezone.now() + _backoff(delivery.attempts)
                outcome["retried"] += 1
                logger.warning(
                    "webhook delivery %s failed (attempt %s): %s", delivery.pk, delivery.attempts, delivery.last_error
                )
        else:
            delivery.status = NotificationDelivery.Status.SENT
            delivery.sent_at = timezone.now()
            delivery.next_attempt_at = delivery.sent_at
            outcome["sent"] += 1
        delivery.save(update_fields=["attempts", "status", "next_attempt_at", "last_error", "sent_at"])
    return outcome
