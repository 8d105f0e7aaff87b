"""The trends selector: buckets against an independent SQL aggregate of the raw metrics, gaps, and change math."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from monitoring.models import DataQualityMetric
from monitoring.selectors import rate
from monitoring.services.metrics import MetricInput, record_metrics
from monitoring.services.retention import prune_metrics
from monitoring.trends import METRICS, trends

pytestmark = pytest.mark.django_db
SOURCES = ("acled", "gdelt", "telegram-osint")
COLUMNS = ("geocoding_attempts", "geocoding_successes", "validation_attempts", "validation_passes", "reports")

# Written straight against the raw table and PostgreSQL's own date_trunc, sharing no code with the
# selector (which reads rollups). Days and hours are taken in UTC explicitly.
RAW_BUCKETS_SQL = """
    SELECT date_trunc(%(unit)s, timestamp AT TIME ZONE 'UTC') AS bucket,
           SUM(geocoding_attempts), SUM(geocoding_successes), SUM(validation_attempts), SUM(validation_passes),
           COUNT(*)
      FROM monitoring_dataqualitymetric
     WHERE %(source)s::text IS NULL OR source = %(source)s::text
     GROUP BY 1
"""
RAW_PERIOD_SQL = """
    SELECT COALESCE(SUM(geocoding_attempts), 0), COALESCE(SUM(geocoding_successes), 0),
           COALESCE(SUM(validation_attempts), 0), COALESCE(SUM(validation_passes), 0), COUNT(*)
      FROM monitoring_dataqualitymetric
     WHERE timestamp >= %(start)s AND timestamp < %(end)s AND (%(source)s::text IS NULL OR source = %(source)s::text)
"""


def _hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _record(at: datetime, *, source: str = "acled", attempts: int = 0, geocoded: int = 0, validated: int = 0) -> None:
    record_metrics(
        metrics=[
            MetricInput(
                source=source,
                timestamp=at,
                geocoding_attempts=attempts,
                geocoding_successes=geocoded,
                validation_attempts=attempts,
                validation_passes=validated,
            )
        ]
    )


def _fill(*, now: datetime, days: int, seed: int = 7) -> None:
    """Irregular reports from three sources, with whole hours left empty and reports on exact boundaries."""
    rng = random.Random(seed)
    batch = []
    for hours_back in range(days * 24):
        if rng.random() < 0.25:
            continue  # a gap: no source reported in this hour
        hour = _hour(now) - timedelta(hours=hours_back)
        for _ in range(rng.randint(1, 4)):
            # Offsets 0 (exactly on the hour, and at midnight on the day boundary) and up to the last microsecond.
            offset = rng.choice(
                [timedelta(0), timedelta(minutes=rng.randint(1, 59)), timedelta(hours=1, microseconds=-1)]
            )
            at = hour + offset
            if at > now:
                continue
            attempts = rng.randint(0, 500)
            batch.append(
                MetricInput(
                    source=rng.choice(SOURCES),
                    timestamp=at,
                    geocoding_attempts=attempts,
                    geocoding_successes=rng.randint(0, attempts),
                    validation_attempts=attempts,
                    validation_passes=rng.randint(0, attempts),
                )
            )
    record_metrics(metrics=batch)


def _raw_buckets(*, unit: str, source: str | None) -> dict[datetime, tuple[int, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(RAW_BUCKETS_SQL, {"unit": unit, "source": source})
        return {row[0].replace(tzinfo=UTC): tuple(int(v) for v in row[1:]) for row in cursor.fetchall()}


def _raw_period(*, start: str, end: str, source: str | None) -> tuple[int, ...]:
    with connection.cursor() as cursor:
        cursor.execute(RAW_PERIOD_SQL, {"start": _parse(start), "end": _parse(end), "source": source})
        return tuple(int(v) for v in cursor.fetchone())


def _expected_rate(numerator: int, denominator: int) -> dict:
    return {
        "rate": rate(numerator=numerator, denominator=denominator) if denominator else None,
        "numerator": numerator,
        "denominator": denominator,
    }


def _expected(sums: tuple[int, ...]) -> dict[str, dict]:
    geo_attempts, geo_successes, val_attempts, val_passes, reports = sums
    return {
        "geocoding_success_rate": _expected_rate(geo_successes, geo_attempts),
        "validation_pass_rate": _expected_rate(val_passes, val_attempts),
        "volume": {"records": geo_attempts, "reports": reports},
    }


def _strip_start(point: dict) -> dict:
    return {key: value for key, value in point.items() if key != "start"}


def _assert_matches_raw(document: dict, *, unit: str, source: str | None) -> None:
    raw = _raw_buckets(unit=unit, source=source)
    zero = (0, 0, 0, 0, 0)
    for metric, block in document["metrics"].items():
        for point in block["points"]:
            assert _strip_start(point) == _expected(raw.get(_parse(point["start"]), zero))[metric], point
    for name in ("current", "previous"):
        period = document["periods"][name]
        sums = _raw_period(start=period["start"], end=period["end"], source=source)
        for metric, block in document["metrics"].items():
            assert block[name] == _expected(sums)[metric], (name, metric)


@pytest.mark.postgres
@pytest.mark.parametrize("source", [None, "gdelt"])
def test_hour_buckets_equal_an_sql_aggregate_of_the_raw_metrics(source):
    now = timezone.now()
    _fill(now=now, days=5)
    document = trends(now=now, metrics=list(METRICS), source=source, bucket="hour", window_hours=48)
    points = document["metrics"]["volume"]["points"]
    assert len(points) == 48
    assert sum(p["reports"] for p in points) > 0 and any(p["reports"] == 0 for p in points)
    _assert_matches_raw(document, unit="hour", source=source)


@pytest.mark.postgres
@pytest.mark.parametrize("source", [None, "acled"])
def test_day_buckets_equal_an_sql_aggregate_of_the_raw_metrics(source):
    now = timezone.now()
    _fill(now=now, days=12)
    document = trends(now=now, metrics=list(METRICS), source=source, bucket="day", window_hours=24 * 5)
    points = document["metrics"]["geocoding_success_rate"]["points"]
    assert [_parse(p["start"]) for p in points] == [
        _hour(now).replace(hour=0) - timedelta(days=back) for back in range(4, -1, -1)
    ]
    _assert_matches_raw(document, unit="day", source=source)


def test_series_is_aligned_to_utc_hours_and_ends_with_the_current_hour():
    now = datetime(2026, 11, 23, 18, 38, 6, 239887, tzinfo=UTC)
    document = trends(now=now, metrics=["volume"], source=None, bucket="hour", window_hours=3)
    starts = [p["start"] for p in document["metrics"]["volume"]["points"]]
    assert starts == ["2026-11-23T16:00:00Z", "2026-11-23T17:00:00Z", "2026-11-23T18:00:00Z"]
    assert (document["start"], document["end"]) == ("2026-11-23T16:00:00Z", "2026-11-23T19:00:00Z")
    assert document["periods"] == {
        "current": {"start": "2026-11-23T15:00:00Z", "end": "2026-11-23T18:00:00Z"},
        "previous": {"start": "2026-11-23T12:00:00Z", "end": "2026-11-23T15:00:00Z"},
    }


def test_day_series_is_aligned_to_utc_days_whatever_the_offset_of_now():
    now = datetime(2026, 11, 23, 1, 30, tzinfo=timezone.get_fixed_timezone(5 * 60))  # 2026-11-22 20:30 UTC
    document = trends(now=now, metrics=["volume"], source=None, bucket="day", window_hours=48)
    assert [p["start"] for p in document["metrics"]["volume"]["points"]] == [
        "2026-11-21T00:00:00Z",
        "2026-11-22T00:00:00Z",
    ]
    assert document["end"] == "2026-11-23T00:00:00Z"
    assert document["periods"]["current"] == {"start": "2026-11-20T20:00:00Z", "end": "2026-11-22T20:00:00Z"}


def test_buckets_without_reports_are_null_rates_and_zero_counts():
    now = timezone.now()
    _record(_hour(now) - timedelta(hours=2), attempts=10, geocoded=9, validated=8)
    document = trends(now=now, metrics=list(METRICS), source=None, bucket="hour", window_hours=4)
    geocoding = document["metrics"]["geocoding_success_rate"]["points"]
    assert [p["rate"] for p in geocoding] == [None, 90.0, None, None]
    assert [(p["numerator"], p["denominator"]) for p in geocoding] == [(0, 0), (9, 10), (0, 0), (0, 0)]
    assert [p["rate"] for p in document["metrics"]["validation_pass_rate"]["points"]] == [None, 80.0, None, None]
    volume = document["metrics"]["volume"]["points"]
    assert [(p["records"], p["reports"]) for p in volume] == [(0, 0), (10, 1), (0, 0), (0, 0)]


def test_an_empty_database_gives_a_full_series_of_gaps_and_no_direction_for_rates():
    document = trends(now=timezone.now(), metrics=list(METRICS), source=None, bucket="day", window_hours=720)
    rates = document["metrics"]["geocoding_success_rate"]
    assert len(rates["points"]) == 30 and all(p["rate"] is None for p in rates["points"])
    assert (rates["change"], rates["direction"]) == (None, None)
    volume = document["metrics"]["volume"]
    assert (volume["change"], volume["direction"]) == (None, "flat")


def _compare(*, before: dict, after: dict, now: datetime, metric: str) -> dict:
    """One-hour window: ``before`` lands in the previous period, ``after`` in the current one."""
    hour = _hour(now)
    if before:
        _record(hour - timedelta(hours=2) + timedelta(minutes=10), **before)
    if after:
        _record(hour - timedelta(hours=1) + timedelta(minutes=10), **after)
    return trends(now=now, metrics=[metric], source=None, bucket="hour", window_hours=1)["metrics"][metric]


@pytest.mark.parametrize(
    ("before", "after", "change", "direction"),
    [
        ({"attempts": 1000, "geocoded": 900}, {"attempts": 1000, "geocoded": 910}, 1.0, "up"),  # on the dead band
        ({"attempts": 1000, "geocoded": 900}, {"attempts": 1000, "geocoded": 909}, 0.9, "flat"),
        ({"attempts": 1000, "geocoded": 900}, {"attempts": 1000, "geocoded": 890}, -1.0, "down"),
        ({"attempts": 1000, "geocoded": 900}, {"attempts": 1000, "geocoded": 891}, -0.9, "flat"),
        ({"attempts": 3, "geocoded": 1}, {"attempts": 3, "geocoded": 2}, 33.4, "up"),  # 66.7 - 33.3, as shown
        ({}, {"attempts": 10, "geocoded": 5}, None, None),  # empty previous period
        ({"attempts": 10, "geocoded": 5}, {}, None, None),
    ],
)
def test_rate_change_is_the_difference_of_the_shown_period_rates(before, after, change, direction):
    block = _compare(before=before, after=after, now=timezone.now(), metric="geocoding_success_rate")
    assert (block["change"], block["direction"]) == (change, direction)
    assert block["change_unit"] == "points" and block["dead_band"] == 1.0


def test_rate_change_weights_by_attempts_not_by_bucket():
    now = timezone.now()
    hour = _hour(now)
    # Previous 2 h: 100/100 and 0/900 -> 10.0 % over the period (an unweighted mean of buckets would say 50 %).
    _record(hour - timedelta(hours=4), attempts=100, geocoded=100)
    _record(hour - timedelta(hours=3), attempts=900, geocoded=0)
    _record(hour - timedelta(hours=2), attempts=100, geocoded=30)
    _record(hour - timedelta(hours=1), attempts=100, geocoded=30)
    block = trends(now=now, metrics=["geocoding_success_rate"], source=None, bucket="hour", window_hours=2)
    block = block["metrics"]["geocoding_success_rate"]
    assert block["previous"] == {"rate": 10.0, "numerator": 100, "denominator": 1000}
    assert block["current"] == {"rate": 30.0, "numerator": 60, "denominator": 200}
    assert (block["change"], block["direction"]) == (20.0, "up")


@pytest.mark.parametrize(
    ("before", "after", "change", "direction"),
    [
        (100, 105, 5.0, "up"),  # on the dead band
        (100, 104, 4.0, "flat"),
        (100, 95, -5.0, "down"),
        (100, 96, -4.0, "flat"),
        (200, 0, -100.0, "down"),
        (3, 4, 33.3, "up"),
        (0, 10, None, "up"),  # growth from an empty previous period has no percentage
        (0, 0, None, "flat"),
    ],
)
def test_volume_change_is_relative_to_the_previous_period(before, after, change, direction):
    block = _compare(
        before={"attempts": before} if before else {},
        after={"attempts": after} if after else {},
        now=timezone.now(),
        metric="volume",
    )
    assert (block["change"], block["direction"]) == (change, direction)
    assert block["previous"]["records"] == before and block["current"]["records"] == after
    assert block["change_unit"] == "percent" and block["dead_band"] == 5.0


def test_the_still_filling_hour_is_shown_but_left_out_of_the_comparison():
    now = timezone.now()
    hour = _hour(now)
    _record(hour - timedelta(hours=1), attempts=100)
    _record(hour - timedelta(hours=2), attempts=100)
    _record(hour, attempts=7)  # the current hour: in the last point, in neither period
    block = trends(now=now, metrics=["volume"], source=None, bucket="hour", window_hours=1)["metrics"]["volume"]
    assert [p["records"] for p in block["points"]] == [7]
    assert (block["previous"]["records"], block["current"]["records"], block["direction"]) == (100, 100, "flat")


def test_source_filter_keeps_only_that_source():
    now = timezone.now()
    hour = _hour(now) - timedelta(hours=1)
    _record(hour, source="acled", attempts=10, geocoded=10)
    _record(hour, source="gdelt", attempts=30, geocoded=0)
    args = {"now": now, "metrics": ["geocoding_success_rate"], "bucket": "hour", "window_hours": 2}
    point = trends(source="acled", **args)["metrics"]["geocoding_success_rate"]["points"][0]
    assert (point["rate"], point["denominator"]) == (100.0, 10)
    point = trends(source=None, **args)["metrics"]["geocoding_success_rate"]["points"][0]
    assert (point["rate"], point["denominator"]) == (25.0, 40)
    document = trends(source="unknown", **args)
    assert document["source"] == "unknown"
    assert all(p["denominator"] == 0 for p in document["metrics"]["geocoding_success_rate"]["points"])


def test_reads_only_rollups_in_three_queries_and_survives_raw_retention():
    then = timezone.now() - timedelta(days=35)
    _fill(now=then, days=3)
    args = {"now": then, "metrics": list(METRICS), "source": None, "bucket": "day", "window_hours": 72}
    with CaptureQueriesContext(connection) as queries:
        before = trends(**args)
    assert len(queries) == 3  # the buckets, the current period and the previous one
    assert not any(DataQualityMetric._meta.db_table in q["sql"] for q in queries.captured_queries)
    prune_metrics(older_than=timezone.now() - timedelta(days=31))
    assert not DataQualityMetric.objects.exists()
    assert trends(**args) == before


def test_metrics_are_answered_in_the_order_asked_without_duplicates():
    document = trends(
        now=timezone.now(),
        metrics=["volume", "validation_pass_rate", "volume"],
        source=None,
        bucket="hour",
        window_hours=1,
    )
    assert list(document["metrics"]) == ["volume", "validation_pass_rate"]


@pytest.mark.parametrize(
    "bad",
    [
        {"metrics": []},
        {"metrics": ["volume", "latency"]},
        {"bucket": "week"},
        {"window_hours": 0},
        {"window_hours": 2161},
        {"bucket": "day", "window_hours": 36},
        {"now": datetime(2026, 11, 23, 18, 0)},  # naive
    ],
)
def test_invalid_arguments_raise_value_error(bad):
    args = {"now": timezone.now(), "metrics": ["volume"], "source": None, "bucket": "hour", "window_hours": 24}
    with pytest.raises(ValueError):
        trends(**{**args, **bad})


def test_largest_window_is_2160_hour_buckets_or_90_day_buckets():
    now = timezone.now()
    hourly = trends(now=now, metrics=["volume"], source=None, bucket="hour", window_hours=2160)
    daily = trends(now=now, metrics=["volume"], source=None, bucket="day", window_hours=2160)
    assert len(hourly["metrics"]["volume"]["points"]) == 2160
    assert len(daily["metrics"]["volume"]["points"]) == 90
