"""recent_anomalies: hourly rollups in the database → anomalies of the last complete hour(s)."""

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from monitoring.anomaly.series import recent_anomalies
from monitoring.models import HourlyRollup

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 3, 20, 10, 25, tzinfo=UTC)
LAST = datetime(2025, 3, 20, 9, tzinfo=UTC)  # the last complete hour before NOW
FIELDS = {"source", "metric", "hour", "observed", "expected", "expected_low", "expected_high", "score", "direction"}
LEVELS = {"acled": 300, "gdelt": 900}


def _row(source: str, hour: datetime, rng: random.Random, *, geocoding: float = 0.9) -> HourlyRollup:
    daily = 1 + 0.4 * math.cos(2 * math.pi * (hour.hour - 13) / 24)
    attempts = max(0, round(rng.gauss(LEVELS[source] * daily, math.sqrt(LEVELS[source] * daily))))
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
    )


def _fill(*, days: int = 15, until: datetime = LAST, sources=tuple(LEVELS), skip=(), collapse=()) -> None:
    """Normal hourly rollups for ``days`` up to ``until`` (and the hour after it).

    ``skip`` hours have no row; ``collapse`` hours geocode 40 % instead of 90 %.
    """
    rng = random.Random(11)
    rows = []
    for source in sources:
        hour = until - timedelta(days=days) + timedelta(hours=1)
        while hour <= until + timedelta(hours=1):
            if (source, hour) not in skip:
                rows.append(_row(source, hour, rng, geocoding=0.4 if (source, hour) in collapse else 0.9))
            hour += timedelta(hours=1)
    HourlyRollup.objects.bulk_create(rows)


def test_a_clear_rate_drop_in_the_last_complete_hour_is_the_only_anomaly():
    _fill(collapse={("acled", LAST)})
    anomalies = recent_anomalies(now=NOW)
    assert [(a["source"], a["metric"], a["direction"]) for a in anomalies] == [
        ("acled", "geocoding_success_rate", "drop")
    ]
    anomaly = anomalies[0]
    assert set(anomaly) == FIELDS
    assert anomaly["hour"] == "2025-03-20T09:00:00Z"
    assert 35 <= anomaly["observed"] <= 45
    assert 88 <= anomaly["expected"] <= 92
    assert anomaly["observed"] < anomaly["expected_low"] < anomaly["expected"] < anomaly["expected_high"] <= 100
    assert anomaly["score"] <= -4


def test_an_hour_without_rows_is_volume_zero_and_its_rates_are_not_judged():
    _fill(skip={("gdelt", LAST)})
    anomalies = recent_anomalies(now=NOW)
    assert [(a["source"], a["metric"], a["observed"], a["direction"]) for a in anomalies] == [
        ("gdelt", "volume", 0, "drop")
    ]
    assert anomalies[0]["expected"] > 500
    assert anomalies[0]["expected_low"] > 0


def test_the_hour_still_filling_up_is_not_judged():
    # The row of 10:00 (the hour containing NOW) collapses; 09:00 is normal.
    _fill(collapse={("acled", LAST + timedelta(hours=1))})
    assert recent_anomalies(now=NOW) == []


def test_several_hours_are_judged_when_asked_and_sorted_by_hour():
    earlier = LAST - timedelta(hours=1)
    _fill(collapse={("acled", earlier), ("gdelt", LAST)})
    assert [(a["hour"], a["source"]) for a in recent_anomalies(now=NOW)] == [("2025-03-20T09:00:00Z", "gdelt")]
    assert [(a["hour"], a["source"]) for a in recent_anomalies(now=NOW, hours=2)] == [
        ("2025-03-20T08:00:00Z", "acled"),
        ("2025-03-20T09:00:00Z", "gdelt"),
    ]


def test_settings_are_read_at_call_time_and_arguments_override_them(settings):
    _fill(collapse={("acled", LAST)})
    settings.MONITORING_ANOMALY_SENSITIVITY = 1000
    assert recent_anomalies(now=NOW) == []
    assert len(recent_anomalies(now=NOW, sensitivity=4)) == 1
    settings.MONITORING_ANOMALY_SENSITIVITY = 4
    settings.MONITORING_ANOMALY_MIN_ATTEMPTS = 10_000
    assert recent_anomalies(now=NOW) == []
    del settings.MONITORING_ANOMALY_MIN_ATTEMPTS
    settings.MONITORING_ANOMALY_TRAINING_DAYS = 2  # under the 72-hour cold-start minimum
    assert recent_anomalies(now=NOW) == []
    assert len(recent_anomalies(now=NOW, training_days=14)) == 1


def test_a_new_source_is_not_compared_with_hours_before_it_existed():
    _fill()
    # gdelt started four days ago: zeros before that would make its every normal hour a spike.
    HourlyRollup.objects.filter(source="gdelt", hour__lt=LAST - timedelta(days=4)).delete()
    assert recent_anomalies(now=NOW) == []


def test_one_query_reads_the_rollups(django_assert_num_queries):
    _fill(collapse={("acled", LAST)})
    with django_assert_num_queries(1):
        recent_anomalies(now=NOW, hours=3)


def test_nothing_to_judge_without_rollups():
    assert recent_anomalies(now=NOW) == []


@pytest.mark.parametrize("kwargs", [{"hours": 0}, {"training_days": 0}, {"sensitivity": 0}])
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(ValueError):
        recent_anomalies(now=NOW, **kwargs)
