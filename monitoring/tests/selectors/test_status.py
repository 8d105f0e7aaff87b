"""The status document: its window, the worst-wins overall status, its query count, and the newest report."""

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.models import DataQualityMetric
from monitoring.selectors import CRITICAL, HEALTHY, NO_DATA, pipeline_status
from monitoring.tests.factories import DataQualityMetricFactory, PipelineRunFactory

pytestmark = pytest.mark.django_db


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
    # Cold: the anomaly detectors read the time zones and the history once per hour, then the hour so far.
    with django_assert_num_queries(7):
        status = pipeline_status(now=timezone.now())
    assert len(status["data_quality"]["by_source"]) == 20
    assert len(status["scraping_health"]["sources"]) == 20


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
