"""Silences: notifications for matching alerts stop while one is active; the alerts stay visible."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from monitoring.alerting.validation import silence_errors, silence_target_errors
from monitoring.models import Alert, AlertRule, HourlyRollup, PipelineRun, ScrapeSource, Silence
from monitoring.services.alerts import apply_silences


class SilenceInputError(ValueError):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def is_known_rule(name: str) -> bool:
    """An alert rule in the database, or one of the defaults (``MONITORING_ALERT_RULES``) not created yet."""
    defaults = {rule["name"] for rule in settings.MONITORING_ALERT_RULES}
    return name in defaults or AlertRule.objects.filter(name=name).exists()


def is_known_source(name: str) -> bool:
    """A source the monitor has seen: scrape runs (any stage), metric reports (their hourly rollups, kept
    after the raw metrics are pruned) or alerts."""
    return (
        ScrapeSource.objects.filter(name=name).exists()
        or HourlyRollup.objects.filter(source=name).exists()
        or PipelineRun.objects.filter(source=name).exists()
        or Alert.objects.filter(source=name).exists()
    )


def target_errors(*, rule_name: str, source: str, ends_at: datetime | None, now: datetime) -> dict[str, str]:
    """Why a silence would match nothing: an unknown rule or source, or an end already past (the API and
    the admin form both ask this)."""
    return silence_target_errors(
        rule_name=rule_name,
        source=source,
        ends_at=ends_at,
        now=now,
        rule_known=not rule_name or is_known_rule(rule_name),
        source_known=not source or is_known_source(source),
    )


def create_silence(
    *,
    ends_at: datetime,
    reason: str,
    rule_name: str = "",
    source: str = "",
    starts_at: datetime | None = None,
    weekdays: list[int] | None = None,
    daily_start: time | None = None,
    duration_minutes: int | None = None,
    user=None,
) -> Silence:
    now = timezone.now()
    starts_at = starts_at or now
    errors = silence_errors(
        starts_at=starts_at,
        ends_at=ends_at,
        reason=reason,
        weekdays=weekdays,
        daily_start=daily_start,
        duration_minutes=duration_minutes,
    )
    # An end already past says more than "must be after starts_at", so it replaces that message.
    errors.update(target_errors(rule_name=rule_name, source=source, ends_at=ends_at, now=now))
    if errors:
        raise SilenceInputError(errors)
    with transaction.atomic():
        silence = Silence.objects.create(
            rule_name=rule_name,
            source=source,
            starts_at=starts_at,
            ends_at=ends_at,
            weekdays=",".join(str(day) for day in sorted(set(weekdays or []))),
            daily_start=daily_start if weekdays else None,
            duration_minutes=duration_minutes if weekdays else None,
            reason=reason.strip(),
            created_by=user,
        )
        apply_silences()
    return silence


def expire_silence(*, silence_id: int) -> Silence:
    """End a silence now (kept for the record); ending one that already ended changes nothing."""
    silence = Silence.objects.get(pk=silence_id)
    now = timezone.now()
    if silence.ends_at > now:
        silence.ends_at = now
        # A silence that had not started yet ends before it begins.
        silence.starts_at = min(silence.starts_at, now - timedelta(microseconds=1))
        with transaction.atomic():
            silence.save(update_fields=["starts_at", "ends_at"])
            apply_silences()
    return silence
