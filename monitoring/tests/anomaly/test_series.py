"""live_anomalies: hourly rollups in the database → per-source fed detectors → findings and readiness."""

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from monitoring.anomaly.series import fed_detectors, live_anomalies, recent_anomalies
from monitoring.models import HourlyRollup, SourceSettings

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 3, 20, 10, 50, tzinfo=UTC)  # 10:00 is five sixths in
LAST = datetime(2025, 3, 20, 9, tzinfo=UTC)  # the last closed hour before NOW
CURRENT = LAST + timedelta(hours=1)
FIELDS = {
    "source",
    "metric",
    "hour",
    "observed",
    "expected",
    "expected_low",
    "expected_high",
    "score",
    "direction",
    "rule",
    "explanation",
    "partial",
}
LEVELS = {"acled": 300, "gdelt": 900}


def _row(
    source: str, hour: datetime, rng: random.Random, *, geocoding: float = 0.9, share: float = 1.0
) -> HourlyRollup:
    daily = 1 + 0.4 * math.cos(2 * math.pi * (hour.hour - 13) / 24)
    mean = LEVELS[source] * daily * share
    attempts = max(0, round(rng.gauss(mean, math.sqrt(mean))))
    successes = min(attempts, round(rng.gauss(attempts * geocoding, math.sqrt(attempts * 0.09))))
    passes = min(attempts, round(rng.gauss(attempts * 0.95, math.sqrt(attempts * 0.05))))
    return HourlyRollup(
        source=source,
        hour=hour,
        geocoding_attempts=attempts,
        geocoding_successes=successes,
        validation_attempts=attempts,
        validation_passes=passes,
        reports=4,
        last_report_at=hour + timedelta(minutes=45 * share),
    )


def _fill(*, days: int = 15, sources=tuple(LEVELS), skip=(), collapse=(), current=True) -> None:
    """Normal hourly rollups for ``days`` up to LAST, and the current hour's first five sixths.

    ``skip`` hours have no row; ``collapse`` hours geocode 40 % instead of 90 %.
    """
    rng = random.Random(11)
    rows = []
    for source in sources:
        hour = LAST - timedelta(days=days) + timedelta(hours=1)
        while hour <= (CURRENT if current else LAST):
            if (source, hour) not in skip:
                geocoding = 0.4 if (source, hour) in collapse else 0.9
                rows.append(_row(source, hour, rng, geocoding=geocoding, share=5 / 6 if hour == CURRENT else 1.0))
            hour += timedelta(hours=1)
    HourlyRollup.objects.bulk_create(rows)


def test_a_clear_rate_drop_in_the_last_closed_hour_is_the_only_finding():
    _fill(collapse={("acled", LAST)})
    (finding,) = recent_anomalies(now=NOW)
    assert set(finding) == FIELDS
    assert (finding["source"], finding["metric"], finding["direction"]) == ("acled", "geocoding_success_rate", "drop")
    assert finding["hour"] == "2025-03-20T09:00:00Z" and finding["partial"] is False
    assert 35 <= finding["observed"] <= 45 and 88 <= finding["expected"] <= 92
    assert finding["observed"] < finding["expected_low"] < finding["expected"] < finding["expected_high"] <= 100
    assert finding["score"] <= -4 and finding["rule"] == "rate" and "expected" in finding["explanation"]


def test_a_source_silent_since_the_last_closed_hour_is_found_before_the_current_hour_closes():
    # One empty hour alone is what a late report looks like; silence running on into the next hour is not.
    _fill(skip={("gdelt", LAST), ("gdelt", CURRENT)})
    (finding,) = recent_anomalies(now=NOW)
    assert (finding["source"], finding["metric"], finding["rule"]) == ("gdelt", "volume", "outage")
    assert finding["hour"] == "2025-03-20T10:00:00Z" and finding["partial"] is True
    assert finding["observed"] == 0 and finding["expected"] > 400  # what should have arrived by 10:50


def test_the_current_hour_filling_up_normally_is_not_a_drop():
    _fill()
    assert recent_anomalies(now=NOW) == []


def test_a_source_with_a_few_hours_of_history_is_learning():
    _fill(days=15, sources=("gdelt",))
    _fill(days=0, sources=("acled",))  # acled reported for the first time at 10:00
    HourlyRollup.objects.bulk_create([_row("acled", LAST - timedelta(hours=h), random.Random(h)) for h in range(9)])
    readiness = live_anomalies(now=NOW)["readiness"]
    assert readiness["acled"] == {"state": "learning", "hours_seen": 9, "hours_needed": 24}
    assert readiness["gdelt"]["state"] == "ready"


def test_the_fed_detectors_are_kept_for_the_hour_and_fed_one_hour_when_it_turns(django_assert_num_queries):
    _fill(collapse={("acled", LAST)})
    live_anomalies(now=NOW)
    with django_assert_num_queries(1):  # the current hour so far
        assert len(live_anomalies(now=NOW + timedelta(minutes=5))["findings"]) == 1
    with django_assert_num_queries(3):  # time zones, the hour that closed, the new hour so far
        live_anomalies(now=NOW + timedelta(minutes=15))
    assert {f.last_closed for f in fed_detectors(now=NOW + timedelta(minutes=15)).values()} == {CURRENT}


def test_each_source_is_judged_in_its_own_time_zone():
    _fill()
    SourceSettings.objects.create(source="acled", timezone="Asia/Kabul")
    detectors = fed_detectors(now=NOW)
    assert (detectors["acled"].time_zone, detectors["gdelt"].time_zone) == ("Asia/Kabul", "UTC")


def test_a_new_source_is_not_compared_with_hours_before_it_existed():
    _fill()
    # gdelt started four days ago: zeros before that would make its every normal hour a spike.
    HourlyRollup.objects.filter(source="gdelt", hour__lt=LAST - timedelta(days=4)).delete()
    assert recent_anomalies(now=NOW) == []


def test_settings_are_read_at_call_time_and_arguments_override_them(settings):
    _fill(collapse={("acled", LAST)})
    settings.MONITORING_ANOMALY_SENSITIVITY = 1000
    assert recent_anomalies(now=NOW) == []
    assert len(recent_anomalies(now=NOW, sensitivity=4)) == 1


def test_nothing_to_judge_without_rollups():
    assert live_anomalies(now=NOW) == {"findings": [], "readiness": {}}


@pytest.mark.parametrize(
    ("name", "value"), [("MONITORING_ANOMALY_SENSITIVITY", 0), ("MONITORING_ANOMALY_TRAINING_DAYS", 0)]
)
def test_bad_settings_are_refused(settings, name, value):
    setattr(settings, name, value)
    with pytest.raises(ValueError):
        live_anomalies(now=NOW)
