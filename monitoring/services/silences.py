"""Silences: notifications for matching alerts stop while one is active; the alerts stay visible."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.db import transaction
from django.utils import timezone

from monitoring.alerting.validation import silence_errors
from monitoring.models import Silence
from monitoring.services.alerts import apply_silences


class SilenceInputError(ValueError):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


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
    starts_at = starts_at or timezone.now()
    errors = silence_errors(
        starts_at=starts_at,
        ends_at=ends_at,
        reason=reason,
        weekdays=weekdays,
        daily_start=daily_start,
        duration_minutes=duration_minutes,
    )
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
