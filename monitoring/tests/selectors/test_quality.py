"""The data-quality half of the status: rates summed over the window, thresholds, sample size, staleness."""

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.selectors import CRITICAL, DEGRADED, HEALTHY, NO_DATA, pipeline_status
from monitoring.tests.factories import DataQualityMetricFactory

pytestmark = pytest.mark.django_db


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


def test_by_stage_breaks_the_totals_down_per_stage_in_pipeline_order_with_the_unstaged_last(now):
    at = now - timedelta(minutes=10)
    DataQualityMetricFactory(timestamp=at, stage="validate", geocoding_attempts=0, geocoding_successes=0)
    DataQualityMetricFactory(timestamp=at, geocoding_attempts=40, geocoding_successes=40)
    DataQualityMetricFactory(
        timestamp=at, source="gdelt", stage="geocode", geocoding_attempts=100, geocoding_successes=10
    )
    DataQualityMetricFactory(timestamp=at - timedelta(hours=2), stage="geocode", geocoding_attempts=100)
    quality = pipeline_status(now=now)["data_quality"]
    by_stage = quality["by_stage"]
    assert [row["stage"] for row in by_stage] == ["geocode", "validate", None]
    geocode, validate, unstaged = by_stage
    assert (geocode["geocoding_attempts"], geocode["geocoding_successes"], geocode["reports"]) == (200, 100, 2)
    assert (geocode["status"], geocode["last_updated"]) == (CRITICAL, at.isoformat().replace("+00:00", "Z"))
    assert (validate["validation_attempts"], validate["validation_pass_rate"], validate["status"]) == (
        100,
        95.0,
        HEALTHY,
    )
    assert (unstaged["geocoding_success_rate"], unstaged["reports"]) == (100.0, 1)
    for field in ("geocoding_attempts", "geocoding_successes", "validation_attempts", "validation_passes", "reports"):
        assert sum(row[field] for row in by_stage) == quality[field] == sum(r[field] for r in quality["by_source"])
    assert "source" not in geocode and "anomaly_detection" not in geocode


def test_the_stages_statuses_leave_the_blocks_status_alone(now):
    at = now - timedelta(minutes=10)
    DataQualityMetricFactory(timestamp=at, stage="geocode", geocoding_attempts=100, geocoding_successes=69)
    DataQualityMetricFactory(timestamp=at, stage="validate", geocoding_attempts=900, geocoding_successes=900)
    quality = pipeline_status(now=now)["data_quality"]
    assert [row["status"] for row in quality["by_stage"]] == [CRITICAL, HEALTHY]
    assert quality["status"] == HEALTHY, "the source's reports, judged together, are healthy"
