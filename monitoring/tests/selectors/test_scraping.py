"""The scraping half of the status: per-source runs, failure rates, staleness, stuck and retired sources."""

from datetime import timedelta

import pytest

from monitoring.models import PipelineRun
from monitoring.selectors import CRITICAL, DEGRADED, HEALTHY, pipeline_status
from monitoring.tests.factories import PipelineRunFactory

pytestmark = pytest.mark.django_db


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
