"""The traffic simulator: the same seed writes the same history, an incident hits only its source and
its last hours, a recovery is written as a second phase, and nonsense arguments are refused."""

from datetime import UTC, datetime, timedelta

import pytest

from monitoring.models import DataQualityMetric, PipelineRun
from monitoring.simulation import (
    INCIDENT_HOURS,
    INCIDENT_SOURCE,
    SOURCES,
    check_arguments,
    simulate,
    simulate_phases,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _history() -> list[tuple]:
    metrics = DataQualityMetric.objects.order_by("source", "timestamp").values_list(
        "source", "timestamp", "geocoding_attempts", "geocoding_successes", "validation_passes"
    )
    runs = PipelineRun.objects.order_by("source", "started_at").values_list("source", "status", "items_in")
    return [*metrics, *runs]


def _run(seed: int, scenario: str = "normal", hours: float = 6) -> list[tuple]:
    simulate(scenario=scenario, now=NOW, hours=hours, step_minutes=60, seed=seed)
    written = _history()
    DataQualityMetric.objects.all().delete()
    PipelineRun.objects.all().delete()
    return written


@pytest.mark.django_db
def test_the_same_seed_writes_the_same_history_and_another_seed_does_not():
    first = _run(seed=7)
    assert first == _run(seed=7)
    assert first != _run(seed=8)


@pytest.mark.django_db
def test_each_step_writes_one_scrape_run_and_one_report_per_healthy_source():
    written = simulate(scenario="normal", now=NOW, hours=3, step_minutes=30, seed=1)
    runs = PipelineRun.objects.filter(stage="scrape")
    assert written["runs"] == runs.count() == 6 * len(SOURCES)
    assert written["metrics"] == DataQualityMetric.objects.count() == runs.filter(status="succeeded").count()
    assert max(DataQualityMetric.objects.values_list("timestamp", flat=True)) == NOW


@pytest.mark.django_db
def test_a_failing_scraper_fails_only_its_source_and_only_in_the_incident_hours():
    simulate(scenario="failing-scraper", now=NOW, hours=24, step_minutes=60, seed=3)
    failed = PipelineRun.objects.filter(status="failed")
    source = INCIDENT_SOURCE["failing-scraper"]
    incident_start = NOW - timedelta(hours=INCIDENT_HOURS)
    hit = failed.filter(source=source, finished_at__gte=incident_start)
    assert hit.count() >= INCIDENT_HOURS // 2
    assert failed.exclude(pk__in=hit).count() <= 2  # normal traffic fails rarely


@pytest.mark.django_db
def test_recover_hours_writes_the_incident_then_the_recovery_phase():
    phases = list(simulate_phases(scenario="volume-drop", now=NOW, hours=12, step_minutes=60, seed=5, recover_hours=2))
    assert [(p.name, p.ends_at) for p in phases] == [("incident", NOW - timedelta(hours=2)), ("recovery", NOW)]
    assert [p.runs for p in phases] == [10 * len(SOURCES), 2 * len(SOURCES)]
    assert sum(p.runs for p in phases) == PipelineRun.objects.count()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"scenario": "meteor", "hours": 24, "recover_hours": 0}, "unknown scenario 'meteor'"),
        ({"scenario": "volume-drop", "hours": 24, "recover_hours": -1}, "recover_hours must be at least 0"),
        ({"scenario": "volume-drop", "hours": 24, "recover_hours": 24}, "shorter than the history"),
        ({"scenario": "normal", "hours": 24, "recover_hours": 2}, "no incident to recover from"),
    ],
)
def test_nonsense_arguments_are_refused_saying_why(arguments, message):
    with pytest.raises(ValueError, match=message):
        check_arguments(**arguments)


def test_sound_arguments_pass():
    check_arguments(scenario="geocoding-outage", hours=24, recover_hours=3)
    check_arguments(scenario="normal", hours=1, recover_hours=0)
