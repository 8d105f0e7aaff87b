"""simulate_pipeline writes traffic through the services; each scenario shows up in the status."""

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from monitoring.models import Alert, DataQualityMetric, PipelineRun
from monitoring.selectors import pipeline_status
from monitoring.services.alerts import evaluate_alerts
from monitoring.simulation import simulate

pytestmark = pytest.mark.django_db


def _simulate(scenario: str) -> dict:
    out = StringIO()
    call_command("simulate_pipeline", f"--scenario={scenario}", "--hours=24", "--seed=7", stdout=out)
    assert scenario in out.getvalue()
    return pipeline_status()


def _source(rows: list[dict], name: str) -> dict:
    return next(row for row in rows if row["source"] == name)


def test_normal_traffic_is_healthy_for_every_source():
    status = _simulate("normal")
    assert status["overall_status"] == "healthy"
    assert len(status["scraping_health"]["sources"]) == 5
    assert {row["status"] for row in status["data_quality"]["by_source"]} == {"healthy"}


def test_a_failing_scraper_shows_its_failure_rate():
    status = _simulate("failing-scraper")
    liveuamap = _source(status["scraping_health"]["sources"], "liveuamap")
    assert liveuamap["failure_rate"] >= 10.0
    assert liveuamap["status"] in {"degraded", "critical"}
    assert status["overall_status"] in {"degraded", "critical"}


def test_a_geocoding_outage_drags_its_source_down():
    status = _simulate("geocoding-outage")
    gdelt = _source(status["data_quality"]["by_source"], "gdelt")
    acled = _source(status["data_quality"]["by_source"], "acled")
    assert gdelt["geocoding_success_rate"] < acled["geocoding_success_rate"] - 10
    assert gdelt["status"] in {"degraded", "critical"}


def test_a_volume_drop_cuts_that_sources_reports():
    _simulate("volume-drop")
    recent = DataQualityMetric.objects.filter(source="reliefweb").order_by("-timestamp")[:6]
    earlier = DataQualityMetric.objects.filter(source="reliefweb").order_by("-timestamp")[8:20]
    recent_mean = sum(r.geocoding_attempts for r in recent) / len(recent)
    earlier_mean = sum(r.geocoding_attempts for r in earlier) / len(earlier)
    assert recent_mean < earlier_mean * 0.3


def test_every_tick_records_a_scrape_run_per_source():
    _simulate("normal")
    assert PipelineRun.objects.filter(stage="scrape").count() == 24 * 5


@pytest.mark.parametrize("args", [["--hours=0"], ["--hours=1e12"], ["--step-minutes=1e-9"], ["--follow=-1"]])
def test_nonsense_arguments_are_refused(args):
    with pytest.raises(CommandError):
        call_command("simulate_pipeline", *args, stdout=StringIO())


@pytest.mark.parametrize("hour", [3, 15])
def test_a_simulated_outage_fires_an_alert_that_resolves_once_traffic_is_normal_again(hour):
    now = datetime(2026, 3, 4, hour, 30, tzinfo=UTC)
    outage_end = now - timedelta(hours=3)
    simulate(scenario="geocoding-outage", now=outage_end, hours=24, step_minutes=60, seed=1)
    evaluate_alerts(document=pipeline_status(now=outage_end), now=outage_end)
    alert = Alert.objects.get(fingerprint="geocoding-rate-low:gdelt")
    assert alert.state == "firing" and alert.severity == "critical"

    simulate(scenario="normal", now=now, hours=3, step_minutes=60, seed=2)
    evaluate_alerts(document=pipeline_status(now=now), now=now)
    alert.refresh_from_db()
    assert alert.state == "resolved"
    assert alert.events.last().comment.startswith("Condition cleared")


def test_the_command_shows_the_alerts_its_traffic_fires():
    out = StringIO()
    call_command("simulate_pipeline", "--scenario=geocoding-outage", "--hours=24", "--seed=1", stdout=out)
    assert "alert fired: [critical] Geocoding success rate" in out.getvalue()
    assert "gdelt" in out.getvalue()


@pytest.mark.parametrize("hour", [0, 6, 12, 18])
@pytest.mark.parametrize("step_minutes", [60, 15])
def test_normal_traffic_fires_no_alert_at_any_hour_of_day(hour, step_minutes):
    """Healthy traffic must never page: not at the daily low of volume, not at short scrape steps."""
    now = datetime(2026, 3, 4, hour, 30, tzinfo=UTC)
    simulate(scenario="normal", now=now, hours=48, step_minutes=step_minutes, seed=hour)
    changes = evaluate_alerts(document=pipeline_status(now=now), now=now)
    assert [change.alert.fingerprint for change in changes] == []


def test_recover_hours_shows_the_incident_alerts_fire_then_resolve():
    out = StringIO()
    call_command(
        "simulate_pipeline",
        "--scenario=geocoding-outage",
        "--hours=24",
        "--seed=3",
        "--recover-hours=2",
        stdout=out,
    )
    text = out.getvalue()
    assert "geocoding-outage (incident)" in text and "geocoding-outage (recovery)" in text
    fired = text.index("alert fired: [critical] Geocoding success rate")
    assert text.index("alert resolved:", fired) > fired
    assert Alert.objects.get(fingerprint="geocoding-rate-low:gdelt").state == "resolved"


@pytest.mark.parametrize(
    "args",
    [
        ["--scenario=normal", "--recover-hours=1"],
        ["--scenario=geocoding-outage", "--hours=2", "--recover-hours=2"],
        ["--scenario=geocoding-outage", "--recover-hours=-1"],
    ],
)
def test_recover_hours_without_an_incident_to_recover_from_is_refused(args):
    with pytest.raises(CommandError):
        call_command("simulate_pipeline", *args, stdout=StringIO())
