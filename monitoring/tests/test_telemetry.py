"""The monitor's own metrics: ingest counts committed rows only; alerts are read from the database."""

import pytest
from prometheus_client.registry import REGISTRY

from monitoring.models import Alert
from monitoring.services.metrics import MetricInput, record_metrics
from monitoring.services.runs import record_run

pytestmark = pytest.mark.django_db


def ingested(kind: str) -> float:
    return REGISTRY.get_sample_value("conflict_monitor_ingested_rows_total", {"kind": kind}) or 0.0


def test_ingest_counts_rows_once_their_transaction_commits(django_capture_on_commit_callbacks):
    before = ingested("metric")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        record_metrics(metrics=[MetricInput(source="acled", geocoding_attempts=3)] * 4)
    assert ingested("metric") == before, "counted before the commit"
    for callback in callbacks:
        callback()
    assert ingested("metric") == before + 4


def test_recorded_runs_are_counted(django_capture_on_commit_callbacks):
    before = ingested("run")
    with django_capture_on_commit_callbacks(execute=True):
        record_run(source="acled", stage="scrape", status="succeeded")
    assert ingested("run") == before + 1


def test_alerts_are_reported_per_state_and_severity_with_zeros_for_the_rest():
    for fingerprint, severity, state in [
        ("a:x", "critical", "firing"),
        ("a:y", "critical", "firing"),
        ("b:x", "high", "acknowledged"),
    ]:
        Alert.objects.create(
            fingerprint=fingerprint, rule_name=fingerprint, severity=severity, state=state, summary="x"
        )

    def value(state, severity):
        return REGISTRY.get_sample_value("conflict_monitor_alerts", {"state": state, "severity": severity})

    assert value("firing", "critical") == 2
    assert value("acknowledged", "high") == 1
    assert value("resolved", "medium") == 0
    assert Alert.objects.count() == 3
