"""The status selector: rate math, windows, thresholds, staleness and the worst-wins rule."""

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.models import DataQualityMetric, PipelineRun
from monitoring.selectors import CRITICAL, DEGRADED, HEALTHY, NO_DATA, pipeline_status, rate, worst
from monitoring.tests.factories import DataQualityMetricFactory, PipelineRunFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def now():
    return timezone.now().replace(microsecond=0)


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [
        (0, 0, 0.0),
        (5, 0, 0.0),
        (873, 1000, 87.3),
        (2, 3, 66.7),
        (1, 3, 33.3),
        (1, 400, 0.3),  # 0.25 rounds half-up, not to even
        (3, 8000, 0.0),  # 0.0375 -> 0.0
        (3, 4000, 0.1),  # 0.075 -> 0.1
        (10, 10, 100.0),
    ],
)
def test_rate_is_percent_rounded_half_up_to_one_decimal(numerator, denominator, expected):
    assert rate(numerator=numerator, denominator=denominator) == expected


def test_worst_ignores_no_data_unless_everything_has_none():
    assert worst(NO_DATA, NO_DATA) == NO_DATA
    assert worst(NO_DATA, HEALTHY) == HEALTHY
    assert worst(HEALTHY, DEGRADED, NO_DATA) == DEGRADED
    assert worst(DEGRADED, CRITICAL, HEALTHY) == CRITICAL


def test_empty_database_reports_no_data_with_zero_rates(now):
    status = pipeline_status(now=now)
    assert status["overall_status"] == NO_DATA
    quality = status["data_quality"]
    assert quality["status"] == NO_DATA
    assert quality["geocoding_success_rate"] == 0.0
    assert quality["validation_pass_rate"] == 0.0
    assert quality["geocoding_attempts"] == 0
    assert quality["last_updated"] is None
    assert quality["by_source"] == []
    assert status["scraping_health"] == {"status": NO_DATA, "stale_sources": 0, "sources": []}


def test_rates_sum_every_report_in_the_window(now):
    DataQualityMetricFactory(timestamp=now - timedelta(hours=1), geocoding_attempts=600, geocoding_successes=500)
    DataQualityMetricFactory(timestamp=now - timedelta(hours=2), geocoding_attempts=400, geocoding_successes=373)
    quality = pipeline_status(now=now)["data_quality"]
    assert quality["geocoding_attempts"] == 1000
    assert quality["geocoding_successes"] == 873
    assert quality["geocoding_success_rate"] == 87.3
    assert quality["total_geocoded"] == 873
    assert quality["validation_attempts"] == 200
    assert quality["validation_passes"] == 190
    assert quality["validation_pass_rate"] == 95.0
    assert quality["reports"] == 2


def test_window_includes_its_start_and_excludes_now_and_the_future(now):
    """Half-open like an hour bucket: a window of whole hours is exactly the sum of its hours."""
    DataQualityMetricFactory(timestamp=now - timedelta(hours=24, seconds=1), geocoding_attempts=1000)
    DataQualityMetricFactory(timestamp=now - timedelta(hours=24), geocoding_attempts=10, geocoding_successes=10)
    DataQualityMetricFactory(timestamp=now - timedelta(seconds=1), geocoding_attempts=10, geocoding_successes=5)
    DataQualityMetricFactory(timestamp=now, geocoding_attempts=1000, geocoding_successes=0)
    DataQualityMetricFactory(timestamp=now + timedelta(seconds=1), geocoding_attempts=1000, geocoding_successes=0)
    quality = pipeline_status(now=now)["data_quality"]
    assert quality["geocoding_attempts"] == 20
    assert quality["geocoding_success_rate"] == 75.0
    assert quality["last_updated"] == (now - timedelta(seconds=1)).isoformat().replace("+00:00", "Z")


def test_window_hours_narrows_the_window(now):
    DataQualityMetricFactory(timestamp=now - timedelta(minutes=30), geocoding_attempts=10, geocoding_successes=10)
    DataQualityMetricFactory(timestamp=now - timedelta(hours=3), geocoding_attempts=10, geocoding_successes=0)
    assert pipeline_status(now=now, window_hours=1)["data_quality"]["geocoding_success_rate"] == 100.0
    assert pipeline_status(now=now, window_hours=4)["data_quality"]["geocoding_success_rate"] == 50.0
    assert pipeline_status(now=now, window_hours=4)["data_quality"]["window_hours"] == 4


@pytest.mark.parametrize("window_hours", [0, 721, -1])
def test_window_hours_out_of_range_is_refused(window_hours):
    with pytest.raises(ValueError):
        pipeline_status(window_hours=window_hours)


def test_by_source_breaks_the_totals_down_per_source(now):
    DataQualityMetricFactory(source="acled", geocoding_attempts=100, geocoding_successes=100)
    DataQualityMetricFactory(source="acled", geocoding_attempts=100, geocoding_successes=50)
    DataQualityMetricFactory(
        source="gdelt", geocoding_attempts=50, geocoding_successes=10, validation_attempts=50, validation_passes=50
    )
    by_source = pipeline_status(now=timezone.now())["data_quality"]["by_source"]
    assert [row["source"] for row in by_source] == ["acled", "gdelt"]
    acled, gdelt = by_source
    assert (acled["geocoding_attempts"], acled["geocoding_successes"], acled["geocoding_success_rate"]) == (
        200,
        150,
        75.0,
    )
    assert acled["status"] == DEGRADED
    assert (gdelt["geocoding_success_rate"], gdelt["validation_pass_rate"], gdelt["status"]) == (20.0, 100.0, CRITICAL)


@pytest.mark.parametrize(
    ("geocoded", "validated", "expected"),
    [
        (850, 900, HEALTHY),  # exactly at both warn thresholds
        (849, 900, DEGRADED),
        (850, 899, DEGRADED),
        (700, 900, DEGRADED),  # exactly at the critical threshold is not critical
        (699, 900, CRITICAL),
        (900, 749, CRITICAL),
        (1000, 1000, HEALTHY),
    ],
)
def test_data_quality_status_follows_thresholds(now, geocoded, validated, expected):
    DataQualityMetricFactory(
        geocoding_attempts=1000, geocoding_successes=geocoded, validation_attempts=1000, validation_passes=validated
    )
    status = pipeline_status(now=timezone.now())
    assert status["data_quality"]["status"] == expected
    assert status["overall_status"] == expected


def test_thresholds_come_from_settings(settings):
    settings.MONITORING_THRESHOLDS = {**settings.MONITORING_THRESHOLDS, "geocoding_warn": 95.0}
    DataQualityMetricFactory(
        geocoding_attempts=100, geocoding_successes=94, validation_attempts=100, validation_passes=100
    )
    assert pipeline_status()["data_quality"]["status"] == DEGRADED


def test_a_small_sample_cannot_move_the_status(now):
    DataQualityMetricFactory(geocoding_attempts=9, geocoding_successes=0, validation_attempts=9, validation_passes=0)
    quality = pipeline_status(now=timezone.now())["data_quality"]
    assert quality["geocoding_success_rate"] == 0.0
    assert quality["status"] == NO_DATA


def test_reports_that_stopped_arriving_make_data_quality_stale_and_degraded(now):
    DataQualityMetricFactory(timestamp=now - timedelta(hours=3), geocoding_attempts=100, geocoding_successes=100)
    quality = pipeline_status(now=now)["data_quality"]
    assert quality["stale"] is True
    assert quality["status"] == DEGRADED
    DataQualityMetricFactory(timestamp=now - timedelta(minutes=1), geocoding_attempts=100, geocoding_successes=100)
    quality = pipeline_status(now=now)["data_quality"]
    assert (quality["stale"], quality["status"]) == (False, HEALTHY)


def test_reports_older_than_the_window_are_stale_not_healthy(now):
    """A pipeline that stopped reporting a day ago must not read as healthy."""
    DataQualityMetricFactory(timestamp=now - timedelta(hours=25), geocoding_attempts=100, geocoding_successes=100)
    status = pipeline_status(now=now)
    quality = status["data_quality"]
    assert (quality["reports"], quality["stale"], quality["status"]) == (0, True, DEGRADED)
    assert quality["last_updated"] == (now - timedelta(hours=25)).isoformat().replace("+00:00", "Z")
    assert status["overall_status"] == DEGRADED
    assert pipeline_status(now=now, window_hours=1)["data_quality"]["status"] == DEGRADED


def test_a_source_in_trouble_keeps_data_quality_from_reading_healthy(now):
    """95 % overall, but one source geocodes 20 %: the block is degraded, the source critical."""
    at = now - timedelta(minutes=5)
    DataQualityMetricFactory(source="big", timestamp=at, geocoding_attempts=10_000, geocoding_successes=9_800)
    DataQualityMetricFactory(source="small", timestamp=at, geocoding_attempts=100, geocoding_successes=20)
    quality = pipeline_status(now=now)["data_quality"]
    assert quality["geocoding_success_rate"] == 97.2
    assert {row["source"]: row["status"] for row in quality["by_source"]} == {"big": HEALTHY, "small": CRITICAL}
    assert quality["status"] == DEGRADED


def test_totals_equal_the_sum_of_the_sources(now):
    for source, attempts in (("a", 10), ("b", 20), ("c", 33)):
        DataQualityMetricFactory(source=source, geocoding_attempts=attempts, geocoding_successes=attempts - 1)
    quality = pipeline_status()["data_quality"]
    for field in ("geocoding_attempts", "geocoding_successes", "validation_attempts", "validation_passes", "reports"):
        assert quality[field] == sum(row[field] for row in quality["by_source"])


def test_a_run_stuck_in_running_degrades_its_source(now):
    for minutes in (50, 40, 30):
        PipelineRunFactory(source="acled", started_at=now - timedelta(minutes=minutes))
    PipelineRunFactory(source="acled", started_at=now - timedelta(hours=7), finished_at=None, status="running")
    (source,) = pipeline_status(now=now)["scraping_health"]["sources"]
    assert (source["running_runs"], source["stuck_runs"], source["status"]) == (1, 1, DEGRADED)


def test_a_source_silent_for_the_retirement_period_leaves_the_status(now, settings):
    settings.MONITORING_THRESHOLDS = {**settings.MONITORING_THRESHOLDS, "source_retire_after_seconds": 3 * 86400}
    PipelineRunFactory(source="retired", started_at=now - timedelta(days=4))
    PipelineRunFactory(source="acled", started_at=now - timedelta(minutes=5))
    assert [s["source"] for s in pipeline_status(now=now)["scraping_health"]["sources"]] == ["acled"]


def test_the_latest_failure_and_its_error_are_reported(now):
    PipelineRunFactory(source="acled", started_at=now - timedelta(minutes=50), status="failed", error="HTTP 503")
    PipelineRunFactory(source="acled", started_at=now - timedelta(minutes=90), status="failed", error="older")
    PipelineRunFactory(source="acled", started_at=now - timedelta(minutes=20))
    (source,) = pipeline_status(now=now)["scraping_health"]["sources"]
    assert source["last_error"] == "HTTP 503"
    assert source["last_failure"] == (now - timedelta(minutes=49)).isoformat().replace("+00:00", "Z")


def test_scraping_source_reports_last_run_last_success_and_failure_rate(now):
    for minutes in (50, 40, 30):
        PipelineRunFactory(source="acled", started_at=now - timedelta(minutes=minutes))
    PipelineRunFactory(
        source="acled", started_at=now - timedelta(minutes=20), status=PipelineRun.Status.FAILED, error="boom"
    )
    PipelineRunFactory(
        source="acled", started_at=now - timedelta(minutes=5), finished_at=None, status=PipelineRun.Status.RUNNING
    )
    (source,) = pipeline_status(now=now)["scraping_health"]["sources"]
    assert source["source"] == "acled"
    assert source["last_run"] == (now - timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    assert source["last_success"] == (now - timedelta(minutes=29)).isoformat().replace("+00:00", "Z")
    assert source["failure_rate"] == 25.0
    assert (source["finished_runs"], source["failed_runs"], source["running_runs"]) == (4, 1, 1)
    assert source["stale"] is False
    assert source["status"] == CRITICAL  # 25 % >= critical threshold


def test_failure_rate_needs_a_minimum_number_of_runs(now):
    PipelineRunFactory(started_at=now - timedelta(minutes=30))
    PipelineRunFactory(started_at=now - timedelta(minutes=20), status=PipelineRun.Status.FAILED)
    (source,) = pipeline_status(now=now)["scraping_health"]["sources"]
    assert source["failure_rate"] == 50.0
    assert source["status"] == HEALTHY


def test_source_without_recent_success_is_stale(now):
    PipelineRunFactory(source="acled", started_at=now - timedelta(hours=3))
    PipelineRunFactory(source="gdelt", started_at=now - timedelta(minutes=10))
    scraping = pipeline_status(now=now)["scraping_health"]
    stale = {s["source"]: s["stale"] for s in scraping["sources"]}
    assert stale == {"acled": True, "gdelt": False}
    assert scraping["stale_sources"] == 1
    assert scraping["status"] == DEGRADED


def test_every_source_stale_is_critical(now):
    PipelineRunFactory(source="acled", started_at=now - timedelta(hours=3))
    PipelineRunFactory(source="gdelt", started_at=now - timedelta(hours=5), status=PipelineRun.Status.FAILED)
    status = pipeline_status(now=now)
    assert status["scraping_health"]["status"] == CRITICAL
    assert status["overall_status"] == CRITICAL


def test_only_scrape_runs_count_towards_scraping_health(now):
    PipelineRunFactory(stage=PipelineRun.Stage.GEOCODE, status=PipelineRun.Status.FAILED)
    assert pipeline_status(now=now)["scraping_health"]["sources"] == []


def test_overall_status_is_the_worst_component(now):
    PipelineRunFactory(started_at=now - timedelta(hours=3))  # stale -> scraping critical (only source)
    DataQualityMetricFactory(geocoding_attempts=100, geocoding_successes=100)
    status = pipeline_status(now=timezone.now())
    assert status["data_quality"]["status"] == HEALTHY
    assert status["overall_status"] == CRITICAL


def test_query_count_does_not_grow_with_sources(django_assert_num_queries, now):
    for i in range(20):
        DataQualityMetricFactory(source=f"source-{i}")
        PipelineRunFactory(source=f"source-{i}")
    with django_assert_num_queries(5):
        status = pipeline_status(now=timezone.now())
    assert len(status["data_quality"]["by_source"]) == 20
    assert len(status["scraping_health"]["sources"]) == 20


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
    import random

    from django.db.models import Count, Max, Sum

    from monitoring.models import DataQualityMetric
    from monitoring.selectors import window_sums

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


def test_the_status_answers_from_the_database_while_the_cache_is_unreachable(settings, now):
    """The anomaly cache only saves work: with Redis down, the status is computed without it."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
            "OPTIONS": {"socket_connect_timeout": 1},
        }
    }
    DataQualityMetricFactory(
        source="acled", geocoding_attempts=100, geocoding_successes=90, timestamp=now - timedelta(seconds=1)
    )
    document = pipeline_status(now=now)
    assert document["data_quality"]["reports"] == 1
    assert document["anomalies"] == []


def test_the_newest_report_survives_retention_so_a_silent_pipeline_reads_stale_not_empty():
    from monitoring.services.retention import prune_metrics

    now = timezone.now()
    DataQualityMetricFactory(timestamp=now - timedelta(days=40))
    newest = DataQualityMetricFactory(timestamp=now - timedelta(days=35)).timestamp
    prune_metrics(older_than=now - timedelta(days=31))
    assert not DataQualityMetric.objects.exists()
    quality = pipeline_status(now=now)["data_quality"]
    assert quality["last_updated"] == newest.isoformat().replace("+00:00", "Z")
    assert quality["stale"] is True
    assert quality["status"] == "degraded"


def test_the_newest_report_before_now_ignores_reports_of_the_current_hour_after_now(now):
    DataQualityMetricFactory(timestamp=now - timedelta(hours=3))
    before = DataQualityMetricFactory(timestamp=now - timedelta(microseconds=1)).timestamp
    DataQualityMetricFactory(timestamp=now)
    assert pipeline_status(now=now)["data_quality"]["last_updated"] == before.isoformat().replace("+00:00", "Z")
