"""What the alert rules read: per-window metric sums and run counts (current and previous window, each
half-open), and which sources are stale, failing, onboarding or anomalous, from the status document."""

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.alerting.inputs import gather_inputs
from monitoring.alerting.rules import OVERALL
from monitoring.tests.factories import DataQualityMetricFactory, PipelineRunFactory

pytestmark = pytest.mark.django_db

NO_SOURCES = {"scraping_health": {"sources": []}}


def _source(name: str, *, stale: bool = False, status: str = "healthy", new: bool = False) -> dict:
    return {"source": name, "stale": stale, "status": status, "new": new, "last_success": f"{name}-ok"}


@pytest.fixture
def now():
    return timezone.now().replace(microsecond=0)


def test_metric_sums_per_source_and_overall_for_the_current_and_previous_window(now):
    DataQualityMetricFactory(
        source="acled", timestamp=now - timedelta(minutes=10), geocoding_attempts=100, geocoding_successes=0
    )
    DataQualityMetricFactory(
        source="gdelt", timestamp=now - timedelta(minutes=20), geocoding_attempts=50, geocoding_successes=0
    )
    DataQualityMetricFactory(
        source="acled", timestamp=now - timedelta(minutes=90), geocoding_attempts=200, geocoding_successes=0
    )
    inputs = gather_inputs(now=now, window_lengths={1}, document=NO_SOURCES)
    current, previous = inputs.current[1], inputs.previous[1]
    assert {source: c["geocoding_attempts"] for source, c in current.counts.items()} == {
        "acled": 100,
        "gdelt": 50,
        OVERALL: 150,
    }
    assert {source: c["geocoding_attempts"] for source, c in previous.counts.items()} == {"acled": 200, OVERALL: 200}
    assert previous.end == current.start


def test_a_report_exactly_at_now_or_a_window_boundary_counts_once_in_the_later_window(now):
    DataQualityMetricFactory(timestamp=now, geocoding_attempts=1000, geocoding_successes=0)
    DataQualityMetricFactory(timestamp=now - timedelta(hours=1), geocoding_attempts=7, geocoding_successes=0)
    inputs = gather_inputs(now=now, window_lengths={1}, document=NO_SOURCES)
    assert inputs.current[1].counts["acled"]["geocoding_attempts"] == 7
    assert inputs.previous[1].counts == {}


def test_finished_and_failed_runs_are_counted_per_stage_and_source(now):
    for status in ("succeeded", "failed", "failed"):
        PipelineRunFactory(source="acled", status=status, started_at=now - timedelta(minutes=30))
    PipelineRunFactory(source="gdelt", stage="geocode", status="failed", started_at=now - timedelta(minutes=30))
    PipelineRunFactory(source="acled", status="running", finished_at=None, started_at=now - timedelta(minutes=5))
    stats = gather_inputs(now=now, window_lengths={1}, document=NO_SOURCES).current[1]
    assert stats.finished_by_stage["scrape"] == {"acled": 3, OVERALL: 3}
    assert stats.failed_by_stage["scrape"] == {"acled": 2, OVERALL: 2}
    assert stats.failed_by_stage["geocode"] == {"gdelt": 1, OVERALL: 1}
    assert stats.finished_by_stage["validate"] == {OVERALL: 0}


def test_every_window_length_asked_for_is_gathered(now):
    inputs = gather_inputs(now=now, window_lengths={1, 6, 24}, document=NO_SOURCES)
    assert set(inputs.current) == set(inputs.previous) == {1, 6, 24}


def test_stale_failing_onboarding_and_anomalies_come_from_the_document(now):
    document = {
        "scraping_health": {
            "sources": [
                _source("stale", stale=True),
                _source("broken", status="critical"),
                _source("newcomer", stale=True, new=True),
                _source("fine"),
            ]
        },
        "anomalies": [{"source": "fine", "metric": "volume"}],
    }
    inputs = gather_inputs(now=now, window_lengths={1}, document=document)
    assert inputs.stale_sources == {"stale": "stale-ok"}
    assert inputs.failing_sources == {"stale", "broken", "newcomer"}
    assert inputs.new_sources == frozenset({"newcomer"})
    assert inputs.anomalies == [{"source": "fine", "metric": "volume"}]
