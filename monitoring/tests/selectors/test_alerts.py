"""The one mapping from open alerts to the status headline (``alerts_floor``), and the status that uses it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.models import Alert
from monitoring.selectors import (
    CRITICAL,
    DEGRADED,
    HEALTHY,
    NO_DATA,
    alerts_floor,
    per_source_status,
    pipeline_status,
    with_floor,
)
from monitoring.tests.factories import DataQualityMetricFactory, PipelineRunFactory


def _alert(id_, severity, *, state="firing", silenced=False, inhibited=False, source="acled"):
    return {
        "id": id_,
        "severity": severity,
        "state": state,
        "silenced": silenced,
        "inhibited": inhibited,
        "source": source,
    }


# --- the mapping (pure) --------------------------------------------------------------------------


def test_no_alerts_set_no_floor():
    assert alerts_floor([]) == {"status": None, "alerts": []}


@pytest.mark.parametrize(("severity", "floor"), [("critical", CRITICAL), ("high", DEGRADED)])
def test_a_firing_critical_or_high_alert_sets_its_floor(severity, floor):
    assert alerts_floor([_alert(7, severity)]) == {"status": floor, "alerts": [7]}


def test_a_medium_alert_does_not_raise_the_status():
    assert alerts_floor([_alert(7, "medium")]) == {"status": None, "alerts": []}


def test_an_acknowledged_alert_still_counts():
    assert alerts_floor([_alert(7, "critical", state="acknowledged")]) == {"status": CRITICAL, "alerts": [7]}


@pytest.mark.parametrize(
    "alert",
    [
        _alert(7, "critical", silenced=True),
        _alert(7, "critical", inhibited=True),
        _alert(7, "critical", state="resolved"),
    ],
    ids=["silenced", "inhibited", "resolved"],
)
def test_silenced_inhibited_and_resolved_alerts_do_not_count(alert):
    assert alerts_floor([alert]) == {"status": None, "alerts": []}


def test_the_most_severe_counting_alert_wins_and_every_counting_alert_is_named():
    alerts = [_alert(1, "high"), _alert(2, "medium"), _alert(3, "critical"), _alert(4, "critical", silenced=True)]
    assert alerts_floor(alerts) == {"status": CRITICAL, "alerts": [1, 3]}


def test_two_critical_alerts_are_critical_not_degraded():
    assert alerts_floor([_alert(1, "critical"), _alert(2, "critical")])["status"] == CRITICAL


@pytest.mark.parametrize(
    ("status", "floor", "expected"),
    [
        (HEALTHY, CRITICAL, CRITICAL),
        (HEALTHY, DEGRADED, DEGRADED),
        (CRITICAL, DEGRADED, CRITICAL),  # a floor never lowers a status
        (NO_DATA, DEGRADED, DEGRADED),
        (NO_DATA, None, NO_DATA),  # no counting alert: nothing to judge stays nothing to judge
        (HEALTHY, None, HEALTHY),
    ],
)
def test_the_floor_only_raises_a_status(status, floor, expected):
    assert with_floor(status, {"status": floor, "alerts": []}) == expected


# --- the status document -------------------------------------------------------------------------


@pytest.fixture
def healthy_pipeline():
    """acled healthy by its numbers: good rates, a recent successful scrape."""
    now = timezone.now()
    DataQualityMetricFactory(source="acled", timestamp=now - timedelta(minutes=5))
    PipelineRunFactory(source="acled", started_at=now - timedelta(minutes=9), finished_at=now - timedelta(minutes=8))
    status = pipeline_status(now=now)
    assert status["overall_status"] == HEALTHY and status["alerts_floor"] == {"status": None, "alerts": []}
    return now


def _open(severity, **fields):
    fields.setdefault("source", "acled")
    return Alert.objects.create(
        fingerprint=f"anomaly:{fields['source']}:{severity}",
        rule_name="anomaly",
        severity=severity,
        summary=f"{severity} anomaly",
        last_seen=timezone.now(),
        **fields,
    )


@pytest.mark.django_db
def test_a_firing_critical_alert_makes_the_status_critical(healthy_pipeline):
    alert = _open("critical")
    status = pipeline_status(now=healthy_pipeline)
    assert status["overall_status"] == CRITICAL
    assert status["alerts_floor"] == {"status": CRITICAL, "alerts": [alert.pk]}
    # The numbers themselves still read healthy: the floor is why the headline does not.
    assert status["scraping_health"]["status"] == HEALTHY and status["data_quality"]["status"] == HEALTHY


@pytest.mark.django_db
def test_a_firing_high_alert_makes_the_status_degraded(healthy_pipeline):
    alert = _open("high")
    status = pipeline_status(now=healthy_pipeline)
    assert (status["overall_status"], status["alerts_floor"]) == (DEGRADED, {"status": DEGRADED, "alerts": [alert.pk]})


@pytest.mark.django_db
def test_a_firing_medium_alert_leaves_the_status_healthy(healthy_pipeline):
    _open("medium")
    assert pipeline_status(now=healthy_pipeline)["overall_status"] == HEALTHY


@pytest.mark.django_db
@pytest.mark.parametrize("fields", [{"silenced": True}, {"inhibited": True}, {"state": "resolved"}])
def test_a_silenced_inhibited_or_resolved_critical_alert_has_no_effect(healthy_pipeline, fields):
    _open("critical", **fields)
    status = pipeline_status(now=healthy_pipeline)
    assert (status["overall_status"], status["alerts_floor"]) == (HEALTHY, {"status": None, "alerts": []})


@pytest.mark.django_db
def test_an_acknowledged_critical_alert_keeps_the_status_critical(healthy_pipeline):
    _open("critical", state="acknowledged")
    assert pipeline_status(now=healthy_pipeline)["overall_status"] == CRITICAL


@pytest.mark.django_db
def test_a_firing_alert_with_no_other_data_sets_the_status():
    _open("high")
    assert pipeline_status()["overall_status"] == DEGRADED


@pytest.mark.django_db
def test_a_sources_status_takes_only_its_own_alerts(healthy_pipeline):
    DataQualityMetricFactory(source="gdelt", timestamp=healthy_pipeline - timedelta(minutes=5))
    _open("critical", source="gdelt")
    _open("high", source="")  # across all sources: the headline only
    per_source = per_source_status(pipeline_status(now=healthy_pipeline))
    assert per_source["gdelt"]["status"] == CRITICAL
    assert per_source["acled"]["status"] == HEALTHY
