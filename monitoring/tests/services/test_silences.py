"""Silences as the service writes them: validated, normalised, applied to open alerts at once, and
ended (not deleted) on expiry; a silence must name a rule and a source the monitor knows."""

from datetime import time, timedelta

import pytest
from django.utils import timezone

from monitoring.models import Alert, AlertRule, Silence
from monitoring.services.silences import (
    SilenceInputError,
    create_silence,
    expire_silence,
    is_known_rule,
    is_known_source,
)
from monitoring.tests.factories import GEO_RULE, AlertFactory, DataQualityMetricFactory, PipelineRunFactory
from monitoring.tests.services.test_alerts import evaluate, report

pytestmark = pytest.mark.django_db


def _in(hours: float):
    return timezone.now() + timedelta(hours=hours)


def test_a_weekly_silence_is_stored_with_sorted_unique_days_and_a_trimmed_reason():
    silence = create_silence(
        ends_at=_in(24 * 30),
        reason="  maintenance  ",
        weekdays=[6, 5, 5],
        daily_start=time(23, 0),
        duration_minutes=120,
    )
    silence.refresh_from_db()
    assert (silence.weekdays, silence.daily_start, silence.duration_minutes) == ("5,6", time(23, 0), 120)
    assert silence.reason == "maintenance"
    assert silence.weekday_set() == {5, 6}


def test_a_silence_without_weekdays_stores_no_recurrence():
    silence = create_silence(ends_at=_in(1), reason="deploy")
    assert (silence.weekdays, silence.daily_start, silence.duration_minutes) == ("", None, None)
    assert silence.is_active(timezone.now())


def test_an_unknown_rule_or_source_is_refused_naming_each_field():
    with pytest.raises(SilenceInputError) as refused:
        create_silence(ends_at=_in(1), reason="why", rule_name="no-such-rule", source="no-such-source")
    assert set(refused.value.errors) == {"rule_name", "source"}
    assert "no-such-rule" in refused.value.errors["rule_name"]
    assert not Silence.objects.exists()


def test_a_rule_is_known_from_the_defaults_or_the_database_and_a_source_from_any_trace(settings):
    settings.MONITORING_ALERT_RULES = [GEO_RULE]
    assert is_known_rule(GEO_RULE["name"])
    assert not is_known_rule("custom")
    AlertRule.objects.create(name="custom", kind="threshold", metric="geocoding_success_rate", critical=50)
    assert is_known_rule("custom")
    assert not any(is_known_source(name) for name in ("runs", "metrics", "alerts"))
    PipelineRunFactory(source="runs")
    DataQualityMetricFactory(source="metrics")
    AlertFactory(source="alerts")
    assert all(is_known_source(name) for name in ("runs", "metrics", "alerts"))


def test_an_end_already_past_says_so_instead_of_before_the_start():
    with pytest.raises(SilenceInputError) as refused:
        create_silence(ends_at=_in(-1), reason="late")
    assert refused.value.errors["ends_at"] == "Already ended: a silence must end in the future."


def test_expiring_a_silence_that_has_not_started_ends_it_before_it_begins():
    silence = create_silence(starts_at=_in(2), ends_at=_in(3), reason="tonight")
    expired = expire_silence(silence_id=silence.pk)
    assert expired.starts_at < expired.ends_at <= timezone.now()
    assert not expired.is_active(timezone.now())


def test_expiring_an_ended_silence_changes_nothing():
    silence = create_silence(ends_at=_in(1), reason="deploy")
    first = expire_silence(silence_id=silence.pk)
    second = expire_silence(silence_id=silence.pk)
    assert (second.starts_at, second.ends_at) == (first.starts_at, first.ends_at)


@pytest.mark.parametrize(
    "fields",
    [
        {"ends_at": timezone.now() - timedelta(hours=1)},
        {"reason": " "},
        {"weekdays": [7], "daily_start": time(1), "duration_minutes": 10},
        {"weekdays": [1]},
        {"daily_start": time(1)},
    ],
)
def test_a_silence_with_bad_fields_is_refused(fields):
    with pytest.raises(SilenceInputError):
        create_silence(**{"ends_at": timezone.now() + timedelta(hours=1), "reason": "why", **fields})


def test_expiring_a_silence_ends_it_now_and_keeps_it():
    silence = create_silence(ends_at=timezone.now() + timedelta(hours=2), reason="deploy")
    expired = expire_silence(silence_id=silence.pk)
    assert not expired.is_active(timezone.now() + timedelta(seconds=1))
    assert Silence.objects.filter(pk=silence.pk).exists()


def test_a_new_silence_marks_open_alerts_silenced_at_once_and_expiring_it_unsilences_them(settings):
    settings.MONITORING_ALERT_RULES = [GEO_RULE]
    report("gdelt", 60)
    report("acled", 60)
    evaluate()
    silence = create_silence(source="gdelt", ends_at=timezone.now() + timedelta(hours=1), reason="upgrade")
    assert dict(Alert.objects.values_list("source", "silenced")) == {"gdelt": True, "acled": False}
    expire_silence(silence_id=silence.pk)
    gdelt = Alert.objects.get(source="gdelt")
    assert gdelt.silenced is False
    assert list(gdelt.events.values_list("kind", flat=True)) == ["fired", "silenced", "unsilenced"]
    assert evaluate() == []  # the evaluation agrees: nothing left to change
