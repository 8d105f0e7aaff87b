"""Alert models: the database keeps one open alert per fingerprint and only known states and severities;
rules and silences refuse in clean() what the evaluation could not use; a silence's weekly window."""

from datetime import UTC, datetime, time, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from monitoring.models import Alert, AlertRule, Silence
from monitoring.tests.factories import AlertFactory

pytestmark = pytest.mark.django_db


@pytest.mark.postgres
def test_the_database_refuses_a_second_open_alert_for_a_fingerprint():
    Alert.objects.create(fingerprint="r:s", rule_name="r", severity="high", summary="x")
    with pytest.raises(IntegrityError), transaction.atomic():
        Alert.objects.create(fingerprint="r:s", rule_name="r", severity="high", summary="y")
    Alert.objects.create(fingerprint="r:s", rule_name="r", severity="high", summary="z", state="resolved")


def at(day: int, hh: int, mm: int = 0) -> datetime:
    return datetime(2026, 11, day, hh, mm, tzinfo=UTC)  # 2026-11-23 is a Monday


def test_a_weekly_silence_is_active_only_inside_its_window():
    silence = Silence(
        starts_at=at(1, 0), ends_at=at(30, 0), weekdays="5", daily_start=time(23, 0), duration_minutes=120, reason="m"
    )  # Saturdays 23:00 for two hours, into Sunday
    assert silence.is_active(at(28, 23, 30))  # Saturday
    assert silence.is_active(at(29, 0, 59))  # Sunday, still inside Saturday's window
    assert not silence.is_active(at(29, 1, 0))
    assert not silence.is_active(at(27, 23, 30))  # Friday
    assert not silence.is_active(at(30, 23, 30))  # past ends_at


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("fields", "constraint"), [({"state": "snoozed"}, "alert_state"), ({"severity": "low"}, "alert_severity")]
)
def test_the_database_refuses_an_unknown_state_or_severity(fields, constraint):
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        AlertFactory(**fields)


def test_a_silence_matches_its_rule_and_source_and_an_empty_field_matches_any():
    both = Silence(rule_name="geo-low", source="gdelt")
    assert both.matches(rule_name="geo-low", source="gdelt")
    assert not both.matches(rule_name="geo-low", source="acled")
    assert not both.matches(rule_name="val-low", source="gdelt")
    assert Silence(source="gdelt").matches(rule_name="anything", source="gdelt")
    assert Silence().matches(rule_name="anything", source="")


def test_a_one_off_silence_is_active_from_its_start_up_to_not_including_its_end():
    silence = Silence(starts_at=at(2, 10), ends_at=at(2, 12), reason="deploy")
    assert silence.is_active(at(2, 10))
    assert silence.is_active(at(2, 11, 59))
    assert not silence.is_active(at(2, 12))
    assert not silence.is_active(at(2, 9, 59))


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"ends_at": at(1, 0)}, "ends_at"),
        ({"reason": " "}, "reason"),
        ({"weekdays": "8", "daily_start": time(1), "duration_minutes": 10}, "weekdays"),
        ({"weekdays": "1"}, "duration_minutes"),
    ],
)
def test_silence_clean_refuses_what_the_evaluation_could_not_use(fields, field):
    silence = Silence(**{"starts_at": at(2, 0), "ends_at": at(3, 0), "reason": "why", **fields})
    with pytest.raises(ValidationError) as refused:
        silence.clean()
    assert field in refused.value.message_dict


@pytest.mark.postgres
def test_the_database_refuses_a_silence_ending_before_it_starts_or_a_half_recurrence():
    now = timezone.now()
    with pytest.raises(IntegrityError, match="silence_ends_after_start"), transaction.atomic():
        Silence.objects.create(starts_at=now, ends_at=now, reason="x")
    with pytest.raises(IntegrityError, match="silence_recurrence_complete"), transaction.atomic():
        Silence.objects.create(ends_at=now + timedelta(hours=1), weekdays="1", reason="x")


def test_rule_clean_refuses_a_metric_its_kind_cannot_read_and_accepts_a_sound_rule():
    rule = AlertRule(name="odd", kind="threshold", metric="failed_runs", critical=50)
    with pytest.raises(ValidationError) as refused:
        rule.clean()
    assert "metric" in refused.value.message_dict
    AlertRule(name="geo", kind="threshold", metric="geocoding_success_rate", critical=50, high=70).clean()


@pytest.mark.postgres
def test_the_database_refuses_a_rule_window_under_one_hour():
    with pytest.raises(IntegrityError, match="rule_window_positive"), transaction.atomic():
        AlertRule.objects.create(name="zero", kind="threshold", metric="geocoding_success_rate", window_hours=0)
