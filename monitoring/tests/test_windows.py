"""The one window computation: half-open windows, UTC hour buckets, rollups equal to the raw metrics."""

import random
from datetime import UTC, datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.db.models import Count, Max, Sum
from django.utils import timezone

from monitoring.models import DataQualityMetric
from monitoring.services.retention import prune_metrics
from monitoring.tests.factories import DataQualityMetricFactory
from monitoring.windows import add_up, db_moment, floor_hour, newest_report, window_sums

pytestmark = pytest.mark.django_db


def _hour_ago(hours: int) -> datetime:
    return floor_hour(timezone.now()) - timedelta(hours=hours)


@pytest.mark.django_db(False)
def test_floor_hour_is_the_start_of_the_utc_hour_whatever_the_zone():
    kyiv = dt_timezone(timedelta(hours=3))
    moment = datetime(2026, 3, 1, 1, 59, 59, 999_999, tzinfo=kyiv)
    assert floor_hour(moment) == datetime(2026, 2, 28, 22, tzinfo=UTC)
    assert floor_hour(datetime(2026, 3, 1, 5, tzinfo=UTC)) == datetime(2026, 3, 1, 5, tzinfo=UTC)


@pytest.mark.django_db(False)
def test_db_moment_reads_naive_values_and_text_as_utc():
    assert db_moment(None) is None
    assert db_moment(datetime(2026, 3, 1, 5, 30)) == datetime(2026, 3, 1, 5, 30, tzinfo=UTC)
    assert db_moment("2026-03-01 05:30:00") == datetime(2026, 3, 1, 5, 30, tzinfo=UTC)
    aware = datetime(2026, 3, 1, 5, 30, tzinfo=dt_timezone(timedelta(hours=2)))
    assert db_moment(aware) is aware


def test_an_empty_or_reversed_window_sums_nothing():
    at = _hour_ago(2) + timedelta(minutes=10)
    DataQualityMetricFactory(timestamp=at)
    assert window_sums(start=at, end=at) == []
    assert window_sums(start=at + timedelta(minutes=1), end=at) == []


def test_a_window_holds_its_start_and_not_its_end():
    start = _hour_ago(3) + timedelta(minutes=20)
    end = start + timedelta(hours=2)
    DataQualityMetricFactory(timestamp=start, geocoding_attempts=7, geocoding_successes=0)
    DataQualityMetricFactory(timestamp=end, geocoding_attempts=1000, geocoding_successes=0)
    DataQualityMetricFactory(
        timestamp=start - timedelta(microseconds=1), geocoding_attempts=1000, geocoding_successes=0
    )
    (row,) = window_sums(start=start, end=end)
    assert (row["source"], row["geocoding_attempts"], row["reports"], row["last_updated"]) == ("acled", 7, 1, start)


def test_per_hour_rows_are_the_utc_hours_and_add_up_to_the_window():
    hour = _hour_ago(5)
    for minutes, attempts in ((5, 10), (50, 20), (65, 30), (130, 40)):
        DataQualityMetricFactory(
            timestamp=hour + timedelta(minutes=minutes), geocoding_attempts=attempts, geocoding_successes=0
        )
    start, end = hour + timedelta(minutes=1), hour + timedelta(minutes=131)
    rows = window_sums(start=start, end=end, per_hour=True)
    assert [(row["hour"], row["geocoding_attempts"]) for row in rows] == [
        (hour, 30),
        (hour + timedelta(hours=1), 30),
        (hour + timedelta(hours=2), 40),
    ]
    (whole,) = window_sums(start=start, end=end)
    assert add_up(rows)["geocoding_attempts"] == whole["geocoding_attempts"] == 100
    assert add_up([]) == {field: 0 for field in add_up(rows)}


def test_per_source_false_sums_every_source_together_and_source_keeps_one():
    at = _hour_ago(2) + timedelta(minutes=30)
    DataQualityMetricFactory(source="acled", timestamp=at, geocoding_attempts=10, geocoding_successes=0)
    DataQualityMetricFactory(source="gdelt", timestamp=at, geocoding_attempts=5, geocoding_successes=0)
    start, end = at - timedelta(hours=1), at + timedelta(hours=1)
    (together,) = window_sums(start=start, end=end, per_source=False)
    assert (together["source"], together["geocoding_attempts"], together["reports"]) == (None, 15, 2)
    (only,) = window_sums(start=start, end=end, source="gdelt")
    assert (only["source"], only["geocoding_attempts"]) == ("gdelt", 5)


def test_the_newest_report_outlives_retention_and_ignores_reports_at_or_after_now():
    now = timezone.now()
    assert newest_report(now=now) is None
    kept = DataQualityMetricFactory(timestamp=now - timedelta(days=35)).timestamp
    prune_metrics(older_than=now - timedelta(days=31))
    assert not DataQualityMetric.objects.exists()
    assert newest_report(now=now) == kept
    DataQualityMetricFactory(timestamp=now)
    assert newest_report(now=now) == kept


@pytest.mark.parametrize(
    ("start_offset", "length"),
    [
        (timedelta(minutes=17, seconds=3), timedelta(hours=24)),  # partial hours at both edges
        (timedelta(0), timedelta(hours=24)),  # starts exactly on the hour: that instant is outside
        (timedelta(minutes=59, seconds=59), timedelta(hours=1)),  # no whole hour inside
        (timedelta(minutes=30), timedelta(hours=3, minutes=30)),  # ends exactly on the hour: inside
    ],
)
def test_window_sums_from_rollups_equal_the_raw_metrics(start_offset, length):
    """Whole hours come from the rollups, edges from raw rows: the sums must be exactly the raw ones."""
    hour = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=30)
    start = hour + start_offset
    end = start + length
    rng = random.Random(7)
    instants = [
        start,
        end,
        start + timedelta(microseconds=1),
        end - timedelta(microseconds=1),
        hour + timedelta(hours=5),
    ]
    instants += [hour + timedelta(seconds=rng.randrange(0, 29 * 3600)) for _ in range(150)]
    for i, at in enumerate(instants):
        attempts = rng.randrange(1, 500)
        DataQualityMetricFactory(
            source=f"s{i % 3}",
            timestamp=at,
            geocoding_attempts=attempts,
            geocoding_successes=rng.randrange(0, attempts),
        )
    expected = list(
        DataQualityMetric.objects.filter(timestamp__gte=start, timestamp__lt=end)
        .values("source")
        .annotate(
            geocoding_attempts=Sum("geocoding_attempts"),
            geocoding_successes=Sum("geocoding_successes"),
            reports=Count("*"),
            last_updated=Max("timestamp"),
        )
        .order_by("source")
    )
    got = [
        {k: row[k] for k in ("source", "geocoding_attempts", "geocoding_successes", "reports", "last_updated")}
        for row in window_sums(start=start, end=end)
    ]
    assert got == expected
