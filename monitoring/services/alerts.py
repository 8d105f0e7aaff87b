"""Alert lifecycle: evaluation opens, updates and auto-resolves alerts; people acknowledge and resolve.

A condition that keeps holding updates its one open alert (one open alert per fingerprint, enforced
by a partial unique index); when it clears the alert resolves (if the rule says so) and a later
breach opens a new one. Every change is written to the audit trail in the same transaction.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from monitoring.alerting.inputs import gather_inputs
from monitoring.alerting.rules import (
    SCRAPE_FAILING_METRIC,
    SEVERITIES,
    Condition,
    RuleSpec,
    covered_by_a_source,
    evaluate,
    is_inhibited,
)
from monitoring.models import Alert, AlertEvent, AlertRule, Silence
from monitoring.services.notifications import enqueue_follow_up, enqueue_notification, should_notify

logger = logging.getLogger(__name__)
FIRING, ACKNOWLEDGED, RESOLVED = Alert.State.FIRING, Alert.State.ACKNOWLEDGED, Alert.State.RESOLVED
ACTIVE = (FIRING, ACKNOWLEDGED)
MAX_COMMENT = 2000


class InvalidTransition(Exception):
    """The alert's state does not allow the requested change (HTTP 409)."""


@dataclasses.dataclass(frozen=True)
class AlertChange:
    kind: str  # fired, updated, acknowledged, resolved
    alert: Alert


def ensure_default_rules() -> None:
    """Create the settings' default rules that are missing; never overwrite a rule edited in the admin."""
    existing = set(AlertRule.objects.values_list("name", flat=True))
    missing = [AlertRule(**spec) for spec in settings.MONITORING_ALERT_RULES if spec["name"] not in existing]
    if missing:
        AlertRule.objects.bulk_create(missing, ignore_conflicts=True)


def _spec(rule: AlertRule) -> RuleSpec:
    return RuleSpec(
        name=rule.name,
        kind=rule.kind,
        metric=rule.metric,
        scope=rule.scope,
        critical=rule.critical,
        high=rule.high,
        medium=rule.medium,
        window_hours=rule.window_hours,
        min_sample=rule.min_sample,
    )


def _event(alert: Alert, kind: str, *, before: str, actor=None, comment: str = "", details=None) -> None:
    AlertEvent.objects.create(
        alert=alert,
        kind=kind,
        from_state=before,
        to_state=alert.state,
        actor=actor,
        comment=comment,
        details=details or {},
    )


def _notify_if_due(alert: Alert) -> None:
    if not alert.notified and should_notify(alert):
        enqueue_notification(alert=alert, event="fired")
        alert.notified = True


def _open(condition: Condition, rule: AlertRule, *, now: datetime, silenced: bool, inhibited: bool) -> Alert:
    alert = Alert.objects.create(
        fingerprint=condition.fingerprint,
        rule=rule,
        rule_name=rule.name,
        source=condition.source,
        severity=condition.severity,
        summary=condition.summary[:300],
        evidence=condition.evidence,
        first_seen=now,
        last_seen=now,
        silenced=silenced,
        inhibited=inhibited,
    )
    _event(alert, "fired", before="", details={"severity": alert.severity, "evidence": alert.evidence})
    _notify_if_due(alert)
    if alert.notified:
        alert.save(update_fields=["notified"])
    return alert


def _refresh(alert: Alert, condition: Condition, *, now: datetime, silenced: bool, inhibited: bool) -> bool:
    """Update an open alert from its condition; returns whether anything beyond last_seen changed."""
    changed = []
    if condition.severity != alert.severity:
        rising = SEVERITIES.index(condition.severity) < SEVERITIES.index(alert.severity)
        _event(
            alert,
            "escalated" if rising else "deescalated",
            before=alert.state,
            details={"from": alert.severity, "to": condition.severity},
        )
        alert.severity = condition.severity
        changed.append("severity")
    for flag, value in (("silenced", silenced), ("inhibited", inhibited)):
        if getattr(alert, flag) != value:
            _event(alert, flag if value else f"un{flag}", before=alert.state)
            setattr(alert, flag, value)
            changed.append(flag)
    if not alert.notified:
        _notify_if_due(alert)
        if alert.notified:
            changed.append("notified")
    alert.summary = condition.summary[:300]
    alert.evidence = condition.evidence
    alert.last_seen = now
    alert.occurrences += 1
    alert.save(update_fields=[*changed, "summary", "evidence", "last_seen", "occurrences"])
    return bool(changed)


def _auto_resolve(alert: Alert, *, now: datetime) -> None:
    before = alert.state
    alert.state = RESOLVED
    alert.resolved_at = now
    alert.resolve_comment = "Condition cleared."
    alert.save(update_fields=["state", "resolved_at", "resolve_comment"])
    _event(alert, "resolved", before=before, comment="Condition cleared (automatic).")
    enqueue_follow_up(alert=alert, event="resolved")


def _evaluable_rules() -> tuple[dict[str, AlertRule], set[str]]:
    """Enabled rules the evaluation can use, and the names of those it cannot (logged)."""
    usable, skipped = {}, set()
    for rule in AlertRule.objects.filter(enabled=True):
        if errors := rule.validation_errors():
            # Rows written around the admin's validation (e.g. by .update()) must not stop the others.
            logger.warning("alert rule %r skipped, it cannot be evaluated: %s", rule.name, _describe(errors))
            skipped.add(rule.name)
        else:
            usable[rule.name] = rule
    return usable, skipped


def _active_silences(now: datetime) -> list[Silence]:
    active = []
    for silence in Silence.objects.filter(starts_at__lte=now, ends_at__gt=now):
        if errors := silence.validation_errors():
            logger.warning("silence %s ignored, it cannot be evaluated: %s", silence.pk, _describe(errors))
        elif silence.is_active(now):
            active.append(silence)
    return active


def _is_silenced(silences: list[Silence], *, rule_name: str, source: str) -> bool:
    return any(silence.matches(rule_name=rule_name, source=source) for silence in silences)


def _describe(errors: dict[str, str]) -> str:
    return "; ".join(f"{field}: {message}" for field, message in errors.items())


def _conditions(specs: list[RuleSpec], inputs, skipped: set[str]) -> dict[str, Condition]:
    """Each rule on its own, so one that fails on data no validation foresaw leaves the others be."""
    conditions: dict[str, Condition] = {}
    for spec in specs:
        try:
            found = evaluate([spec], inputs)
        except Exception:
            logger.warning("alert rule %r skipped, its evaluation failed", spec.name, exc_info=True)
            skipped.add(spec.name)
            continue
        conditions.update((c.fingerprint, c) for c in found)
    return conditions


def evaluate_alerts(*, document: dict[str, Any], now: datetime | None = None) -> list[AlertChange]:
    """Run every enabled rule against the database and the status ``document``; apply the outcome.

    A rule that cannot be evaluated is skipped with a warning, and its open alerts are left as they
    are: it cannot tell whether their condition cleared.
    """
    now = now or timezone.now()
    ensure_default_rules()
    rules, skipped = _evaluable_rules()
    specs = [_spec(rule) for rule in rules.values()]
    windowed = ("threshold", "score_drop", "issue_increase", "failure_rate")
    windows = {s.window_hours for s in specs if s.kind in windowed}
    inputs = gather_inputs(now=now, window_lengths=windows, document=document)
    conditions = _conditions(specs, inputs, skipped)
    # A source whose scrape runs fail too often is failing: its geocode/validate alerts are symptoms.
    scrape_failing = {
        c.source for c in conditions.values() if c.source and rules[c.rule_name].metric == SCRAPE_FAILING_METRIC
    }
    found = list(conditions.values())
    silences = _active_silences(now)
    changes: list[AlertChange] = []
    with transaction.atomic():
        open_alerts = {a.fingerprint: a for a in Alert.objects.select_for_update().filter(state__in=ACTIVE)}
        for fingerprint, condition in conditions.items():
            rule = rules[condition.rule_name]
            silenced = _is_silenced(silences, rule_name=rule.name, source=condition.source)
            inhibited = is_inhibited(condition, rule.metric, inputs, scrape_failing) or covered_by_a_source(
                condition, found
            )
            alert = open_alerts.pop(fingerprint, None)
            if alert is None:
                changes.append(
                    AlertChange("fired", _open(condition, rule, now=now, silenced=silenced, inhibited=inhibited))
                )
            elif _refresh(alert, condition, now=now, silenced=silenced, inhibited=inhibited):
                changes.append(AlertChange("updated", alert))
        for alert in open_alerts.values():
            if alert.last_seen > now or alert.rule_name in skipped:
                continue  # opened after this evaluation read its inputs, or its rule could not judge it
            rule = rules.get(alert.rule_name) or _current_rule(alert.rule_name)
            # A rule switched off or deleted cannot clear its alerts any more: resolve them.
            if rule is None or rule.auto_resolve:
                _auto_resolve(alert, now=now)
                changes.append(AlertChange("resolved", alert))
    return changes


def _current_rule(name: str) -> AlertRule | None:
    """A rule created or enabled since the evaluation read its rules is judged at the next one."""
    return AlertRule.objects.filter(name=name, enabled=True).first()


def _clean_comment(comment: str) -> str:
    if len(comment) > MAX_COMMENT:
        raise ValueError(f"A comment has at most {MAX_COMMENT} characters.")
    return comment.strip()


def acknowledge_alert(*, alert_id: int, user, comment: str = "") -> tuple[Alert, bool]:
    """Firing → acknowledged. Acknowledging twice is a no-op; a resolved alert cannot be acknowledged."""
    comment = _clean_comment(comment)
    with transaction.atomic():
        alert = Alert.objects.select_for_update().get(pk=alert_id)
        if alert.state == ACKNOWLEDGED:
            return alert, False
        if alert.state == RESOLVED:
            raise InvalidTransition("A resolved alert cannot be acknowledged.")
        alert.state = ACKNOWLEDGED
        alert.acknowledged_by = user
        alert.acknowledged_at = timezone.now()
        alert.acknowledge_comment = comment
        alert.save(update_fields=["state", "acknowledged_by", "acknowledged_at", "acknowledge_comment"])
        _event(alert, "acknowledged", before=FIRING, actor=user, comment=comment)
        enqueue_follow_up(alert=alert, event="acknowledged")
        _publish_on_commit([AlertChange("acknowledged", alert)])
        return alert, True


def resolve_alert(*, alert_id: int, user, comment: str = "") -> tuple[Alert, bool]:
    """Firing or acknowledged → resolved. Resolving twice is a no-op."""
    comment = _clean_comment(comment)
    with transaction.atomic():
        alert = Alert.objects.select_for_update().get(pk=alert_id)
        if alert.state == RESOLVED:
            return alert, False
        before = alert.state
        alert.state = RESOLVED
        alert.resolved_by = user
        alert.resolved_at = timezone.now()
        alert.resolve_comment = comment
        alert.save(update_fields=["state", "resolved_by", "resolved_at", "resolve_comment"])
        _event(alert, "resolved", before=before, actor=user, comment=comment)
        # Whoever resolves it (API, admin, evaluation), a paged alert gets its one resolution notice.
        enqueue_follow_up(alert=alert, event="resolved")
        _publish_on_commit([AlertChange("resolved", alert)])
        return alert, True


def apply_silences(*, now: datetime | None = None) -> list[AlertChange]:
    """Mark open alerts silenced or not by the silences active ``now``, at once rather than at the next
    evaluation, so a silence created or ended by a person shows on the live feed right away."""
    now = now or timezone.now()
    silences = _active_silences(now)
    changes: list[AlertChange] = []
    with transaction.atomic():
        for alert in Alert.objects.select_for_update().filter(state__in=ACTIVE).order_by("pk"):
            silenced = _is_silenced(silences, rule_name=alert.rule_name, source=alert.source)
            if alert.silenced != silenced:
                alert.silenced = silenced
                alert.save(update_fields=["silenced"])
                _event(alert, "silenced" if silenced else "unsilenced", before=alert.state)
                changes.append(AlertChange("updated", alert))
        if changes:
            _publish_on_commit(changes)
    return changes


def _publish_on_commit(changes: list[AlertChange]) -> None:
    """After commit: each change on the alerts topic, and a hint for the broadcaster's fresh status."""
    from monitoring.services.feed import publish_alert_changes_sync, request_status_push_on_commit

    transaction.on_commit(lambda: publish_alert_changes_sync(changes=changes))
    request_status_push_on_commit(reason="alerts")
