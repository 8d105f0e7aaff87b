"""Issue 17: the pipeline's own failures page (failure-rate rules), and a new source does not page
while it is onboarding — through the status document and ``evaluate_alerts``, runs recorded as the API does."""

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.models import Alert, PipelineRun
from monitoring.selectors import pipeline_status
from monitoring.services.alerts import evaluate_alerts
from monitoring.tests.factories import PipelineRunFactory

pytestmark = pytest.mark.django_db
FAILED, SUCCEEDED, RUNNING = PipelineRun.Status.FAILED, PipelineRun.Status.SUCCEEDED, PipelineRun.Status.RUNNING


def runs(source, stage, *, failed, total, hours_ago=0.0):
    """``total`` finished runs half an hour apart (newest first, succeeded), ``failed`` of them failed."""
    now = timezone.now()
    for i in range(total):
        started = now - timedelta(hours=hours_ago, minutes=30 * i + 10)
        status = FAILED if 0 < i <= failed else SUCCEEDED
        PipelineRunFactory(
            source=source, stage=stage, status=status, started_at=started, finished_at=started + timedelta(minutes=1)
        )


def evaluate():
    return evaluate_alerts(document=pipeline_status())


def open_alerts(rule_name=None):
    alerts = Alert.objects.exclude(state=Alert.State.RESOLVED)
    if rule_name:
        alerts = alerts.filter(rule_name=rule_name)
    return {(a.rule_name, a.source): a for a in alerts}


def source_row(source):
    return next(s for s in pipeline_status()["scraping_health"]["sources"] if s["source"] == source)


def test_a_fifth_of_failed_scrape_runs_raises_one_alert_per_source():
    runs("acled", "scrape", failed=5, total=24)
    runs("gdelt", "scrape", failed=0, total=24)
    assert source_row("acled")["failure_rate"] == 20.8
    evaluate()
    evaluate()  # a second evaluation updates the same alert
    (alert,) = open_alerts("scrape-failure-rate").values()
    assert (alert.source, alert.severity, alert.occurrences) == ("acled", "medium", 2)
    assert alert.evidence["value"] == 20.8 and alert.evidence["finished_runs"] == 24
    assert not alert.inhibited


def test_geocode_and_validate_failure_rates_alert_per_source():
    runs("acled", "scrape", failed=0, total=10)
    runs("acled", "geocode", failed=3, total=6)
    runs("acled", "validate", failed=1, total=4)  # below the minimum sample of 5
    evaluate()
    assert set(open_alerts()) >= {("geocode-failure-rate", "acled")}
    assert ("validate-failure-rate", "acled") not in open_alerts()
    assert not open_alerts("geocode-failure-rate")[("geocode-failure-rate", "acled")].inhibited


def test_a_failing_scraper_inhibits_the_geocode_failure_rate_of_its_source():
    runs("acled", "scrape", failed=5, total=24)
    runs("acled", "geocode", failed=3, total=6)
    evaluate()
    alerts = open_alerts()
    assert not alerts[("scrape-failure-rate", "acled")].inhibited
    assert alerts[("geocode-failure-rate", "acled")].inhibited


@pytest.mark.parametrize("status", [FAILED, RUNNING])
def test_the_first_run_of_a_new_source_is_new_and_raises_no_stale_or_failure_alert(status):
    runs("acled", "scrape", failed=0, total=10)
    started = timezone.now() - timedelta(minutes=5)
    finished = started + timedelta(minutes=1) if status == FAILED else None
    PipelineRunFactory(source="brandnew", stage="scrape", status=status, started_at=started, finished_at=finished)
    row = source_row("brandnew")
    assert (row["new"], row["stale"]) == (True, True)
    assert source_row("acled")["new"] is False
    evaluate()
    assert [key for key in open_alerts() if key[1] == "brandnew"] == []


def test_a_new_source_failing_repeatedly_does_not_page():
    runs("brandnew", "scrape", failed=6, total=6)
    # runs() makes the newest run a success: remove it so the source never succeeded.
    PipelineRun.objects.filter(source="brandnew", status=SUCCEEDED).delete()
    PipelineRunFactory(source="brandnew", stage="scrape", status=FAILED)
    assert source_row("brandnew")["new"] is True
    evaluate()
    assert [key for key in open_alerts() if key[1] == "brandnew"] == []


def test_after_its_first_success_a_source_is_no_longer_new():
    PipelineRunFactory(source="brandnew", stage="scrape", status=FAILED)
    assert source_row("brandnew")["new"] is True
    PipelineRunFactory(source="brandnew", stage="scrape", status=SUCCEEDED)
    assert source_row("brandnew")["new"] is False


def test_after_the_onboarding_period_a_source_without_success_pages_as_before(settings):
    settings.MONITORING_ONBOARDING_HOURS = 24
    long_ago = timezone.now() - timedelta(hours=25)
    PipelineRunFactory(
        source="brandnew",
        stage="scrape",
        status=FAILED,
        started_at=long_ago,
        finished_at=long_ago + timedelta(minutes=1),
    )
    PipelineRunFactory(source="brandnew", stage="scrape", status=FAILED)
    row = source_row("brandnew")
    assert (row["new"], row["stale"]) == (False, True)
    evaluate()
    assert ("source-stale", "brandnew") in open_alerts()


def test_a_shorter_onboarding_period_ends_sooner(settings):
    PipelineRunFactory(source="brandnew", stage="scrape", status=FAILED)
    settings.MONITORING_ONBOARDING_HOURS = 0
    assert source_row("brandnew")["new"] is False
    evaluate()
    assert ("source-stale", "brandnew") in open_alerts()
