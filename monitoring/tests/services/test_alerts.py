"""Alert lifecycle against the database: one alert per condition, auto-resolve, transitions, audit,
silences, inhibition and the notification outbox."""

from datetime import time, timedelta

import pytest
from django.utils import timezone

from monitoring.models import Alert, AlertEvent, AlertRule, NotificationDelivery, Silence
from monitoring.selectors import pipeline_status
from monitoring.services.alerts import InvalidTransition, acknowledge_alert, evaluate_alerts, resolve_alert
from monitoring.services.metrics import MetricInput, record_metrics
from monitoring.services.silences import create_silence
from monitoring.tests.factories import GEO_RULE, PipelineRunFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def only_geo_rule(settings):
    settings.MONITORING_ALERT_RULES = [GEO_RULE]


def report(source: str, successes: int, attempts: int = 100, minutes_ago: int = 5) -> None:
    at = timezone.now() - timedelta(minutes=minutes_ago)
    record_metrics(
        metrics=[MetricInput(source=source, timestamp=at, geocoding_attempts=attempts, geocoding_successes=successes)]
    )


def evaluate():
    return evaluate_alerts(document=pipeline_status())


def test_rules_come_from_settings_once_and_admin_edits_survive(only_geo_rule):
    evaluate()
    AlertRule.objects.filter(name="geo-low").update(critical=50)
    evaluate()
    assert list(AlertRule.objects.values_list("name", "critical")) == [("geo-low", 50.0)]


def test_a_breach_opens_one_alert_with_evidence_and_an_audit_entry(only_geo_rule):
    report("gdelt", 60)
    (change,) = evaluate()
    alert = change.alert
    assert (change.kind, alert.state, alert.severity, alert.source) == ("fired", "firing", "critical", "gdelt")
    assert alert.fingerprint == "geo-low:gdelt"
    assert alert.evidence["value"] == 60.0 and alert.evidence["denominator"] == 100
    assert list(alert.events.values_list("kind", "to_state")) == [("fired", "firing")]


def test_a_condition_that_keeps_firing_updates_the_same_alert(only_geo_rule):
    report("gdelt", 60)
    evaluate()
    assert evaluate() == []  # nothing but last_seen changed: no push
    alert = Alert.objects.get()
    assert alert.occurrences == 2
    assert Alert.objects.count() == 1


def test_a_change_of_severity_is_recorded(only_geo_rule):
    report("gdelt", 60)
    evaluate()
    report("gdelt", 100, attempts=100, minutes_ago=3)  # 160/200 = 80 %: medium
    (change,) = evaluate()
    assert (change.kind, change.alert.severity) == ("updated", "medium")
    assert AlertEvent.objects.filter(kind="deescalated", details__to="medium").exists()


def test_a_cleared_condition_auto_resolves_and_a_later_breach_opens_a_new_alert(only_geo_rule):
    report("gdelt", 60, minutes_ago=50)
    first = evaluate()[0].alert
    report("gdelt", 1000, attempts=1000, minutes_ago=1)  # the hour's rate recovers
    (change,) = evaluate()
    assert (change.kind, change.alert.pk, change.alert.state) == ("resolved", first.pk, "resolved")
    assert change.alert.events.last().kind == "resolved"
    report("gdelt", 0, attempts=2000, minutes_ago=1)
    (again,) = evaluate()
    assert again.kind == "fired" and again.alert.pk != first.pk
    assert Alert.objects.filter(fingerprint="geo-low:gdelt").count() == 2


def test_without_auto_resolve_a_cleared_alert_stays_open(settings):
    settings.MONITORING_ALERT_RULES = [{**GEO_RULE, "auto_resolve": False}]
    report("gdelt", 60, minutes_ago=50)
    evaluate()
    report("gdelt", 1000, attempts=1000, minutes_ago=1)
    assert evaluate() == []
    assert Alert.objects.get().state == "firing"


def test_an_alert_opened_while_an_evaluation_runs_is_left_to_the_next_one():
    """The evaluation's rules and inputs predate the alert: they cannot say its condition cleared."""
    started = timezone.now()
    rule = AlertRule.objects.create(name="manual", kind="threshold", metric="geocoding_success_rate", critical=70)
    Alert.objects.create(fingerprint="manual:acled", rule=rule, rule_name="manual", severity="critical", summary="x")
    assert evaluate_alerts(document=pipeline_status(), now=started) == []
    assert Alert.objects.get(fingerprint="manual:acled").state == "firing"


def test_a_rule_enabled_during_an_evaluation_keeps_its_open_alert(settings, monkeypatch):
    settings.MONITORING_ALERT_RULES = []
    rule = AlertRule.objects.create(
        name="manual", kind="threshold", metric="geocoding_success_rate", critical=70, auto_resolve=False, enabled=False
    )
    Alert.objects.create(fingerprint="manual:acled", rule=rule, rule_name="manual", severity="critical", summary="x")
    from monitoring.services import alerts as service

    real_gather = service.gather_inputs

    def enable_then_gather(**kwargs):
        AlertRule.objects.filter(pk=rule.pk).update(enabled=True)  # an operator, between two reads
        return real_gather(**kwargs)

    monkeypatch.setattr(service, "gather_inputs", enable_then_gather)
    assert evaluate() == []
    assert Alert.objects.get(fingerprint="manual:acled").state == "firing"


def test_acknowledge_then_resolve_with_comments_and_audit(only_geo_rule, django_user_model):
    user = django_user_model.objects.create_user("operator")
    report("gdelt", 60)
    alert = evaluate()[0].alert
    acked, changed = acknowledge_alert(alert_id=alert.pk, user=user, comment="looking")
    assert changed and (acked.state, acked.acknowledged_by, acked.acknowledge_comment) == (
        "acknowledged",
        user,
        "looking",
    )
    assert acknowledge_alert(alert_id=alert.pk, user=user)[1] is False
    resolved, changed = resolve_alert(alert_id=alert.pk, user=user, comment="geocoder restarted")
    assert changed and (resolved.state, resolved.resolved_by) == ("resolved", user)
    assert resolve_alert(alert_id=alert.pk, user=user)[1] is False
    with pytest.raises(InvalidTransition):
        acknowledge_alert(alert_id=alert.pk, user=user)
    trail = list(alert.events.values_list("kind", "from_state", "to_state", "comment"))
    assert trail == [
        ("fired", "", "firing", ""),
        ("acknowledged", "firing", "acknowledged", "looking"),
        ("resolved", "acknowledged", "resolved", "geocoder restarted"),
    ]


def test_an_acknowledged_alert_still_updates_and_auto_resolves(only_geo_rule, django_user_model):
    report("gdelt", 60, minutes_ago=50)
    alert = evaluate()[0].alert
    acknowledge_alert(alert_id=alert.pk, user=django_user_model.objects.create_user("op"))
    report("gdelt", 1000, attempts=1000, minutes_ago=1)
    assert evaluate()[0].kind == "resolved"


def test_a_matching_silence_marks_the_alert_silenced_and_stops_its_notification(only_geo_rule, settings):
    settings.MONITORING_WEBHOOK_URL = "http://127.0.0.1:9/hook"
    report("gdelt", 60)  # a silence names a source the monitor knows
    report("acled", 60)
    create_silence(rule_name="geo-low", source="gdelt", ends_at=timezone.now() + timedelta(hours=1), reason="upgrade")
    alerts = {c.alert.source: c.alert for c in evaluate()}
    assert (alerts["gdelt"].silenced, alerts["acled"].silenced) == (True, False)
    assert list(NotificationDelivery.objects.values_list("alert__source", flat=True)) == ["acled"]


def test_downstream_alerts_of_a_stale_scraper_are_inhibited(only_geo_rule):
    PipelineRunFactory(source="gdelt", started_at=timezone.now() - timedelta(hours=5))  # stale
    report("gdelt", 60)
    assert evaluate()[0].alert.inhibited is True


def test_downstream_alerts_of_a_failing_but_recent_scraper_are_inhibited(only_geo_rule):
    """Not stale (a success 10 minutes ago) but most runs fail: its geocoding alert is a symptom, not a page."""
    now = timezone.now()
    PipelineRunFactory(source="gdelt", status="succeeded", started_at=now - timedelta(minutes=10))
    for minutes in (20, 30, 40, 50):
        PipelineRunFactory(source="gdelt", status="failed", started_at=now - timedelta(minutes=minutes), error="403")
    report("gdelt", 60)
    change = evaluate()[0]
    assert change.alert.source == "gdelt" and change.alert.inhibited is True


def test_a_healthy_scraper_does_not_inhibit_its_downstream_alerts(only_geo_rule):
    PipelineRunFactory(source="gdelt", status="succeeded", started_at=timezone.now() - timedelta(minutes=10))
    report("gdelt", 60)
    assert evaluate()[0].alert.inhibited is False


def test_one_source_collapsing_pages_its_own_alert_not_the_overall_echo(settings):
    settings.MONITORING_ALERT_RULES = [{**GEO_RULE, "scope": "both"}]
    settings.MONITORING_WEBHOOK_URL = "http://127.0.0.1:9/hook"
    report("gdelt", 10)
    report("acled", 95)  # overall (105/200 = 52.5 %) is critical only because of gdelt
    alerts = {c.alert.source: c.alert for c in evaluate()}
    assert (alerts["gdelt"].inhibited, alerts[""].inhibited) == (False, True)
    assert list(NotificationDelivery.objects.values_list("alert__source", flat=True)) == ["gdelt"]


def test_many_sources_a_little_low_page_the_overall_alert(settings):
    settings.MONITORING_ALERT_RULES = [{**GEO_RULE, "scope": "both", "min_sample": 150}]
    settings.MONITORING_WEBHOOK_URL = "http://127.0.0.1:9/hook"
    for source in ("gdelt", "acled", "liveuamap"):
        report(source, 65)  # each under the per-source minimum sample; together 195/300 = 65 %
    (change,) = evaluate()
    assert (change.alert.source, change.alert.severity, change.alert.inhibited) == ("", "critical", False)
    assert list(NotificationDelivery.objects.values_list("alert__source", flat=True)) == [""]


def test_the_outbox_gets_new_critical_alerts_and_their_resolution_only(only_geo_rule, settings):
    settings.MONITORING_WEBHOOK_URL = "http://127.0.0.1:9/hook"
    report("gdelt", 60, minutes_ago=50)  # critical
    report("acled", 84, minutes_ago=50)  # medium: no page
    evaluate()
    assert list(NotificationDelivery.objects.values_list("alert__source", "event")) == [("gdelt", "fired")]
    report("gdelt", 1000, attempts=1000, minutes_ago=1)
    evaluate()
    assert sorted(NotificationDelivery.objects.values_list("alert__source", "event")) == [
        ("gdelt", "fired"),
        ("gdelt", "resolved"),
    ]


def test_a_detector_finding_in_the_status_document_opens_an_anomaly_alert(settings):
    from monitoring.tests.anomaly.test_series import LAST, NOW, _fill

    settings.MONITORING_ALERT_RULES = [
        {
            "name": "anomaly",
            "kind": "anomaly",
            "metric": "any",
            "scope": "per_source",
            "critical": 10,
            "high": 6,
            "medium": 4,
        }
    ]
    _fill(collapse={("acled", LAST)})
    document = pipeline_status(now=NOW)
    assert [(a["source"], a["metric"]) for a in document["anomalies"]] == [("acled", "geocoding_success_rate")]
    (change,) = evaluate_alerts(document=document, now=NOW)
    assert (change.alert.fingerprint, change.alert.source) == ("anomaly:acled", "acled")
    assert change.alert.evidence["metric"] == "geocoding_success_rate"
    assert change.alert.severity in {"medium", "high", "critical"}


VAL_RULE = {**GEO_RULE, "name": "val-low", "metric": "validation_pass_rate", "critical": 75, "high": 85, "medium": 90}


def report_both(source: str, geo: int, val: int) -> None:
    at = timezone.now() - timedelta(minutes=5)
    metric = MetricInput(
        source=source,
        timestamp=at,
        geocoding_attempts=100,
        geocoding_successes=geo,
        validation_attempts=100,
        validation_passes=val,
    )
    record_metrics(metrics=[metric])


@pytest.mark.parametrize(
    "damage",
    [
        {"kind": "percentile"},
        {"metric": "failed_runs"},  # a threshold rule cannot read a count of runs
        {"critical": 90, "high": 80},  # out of order
        {"critical": -1},
        {"critical": None, "high": None, "medium": None},  # can never fire
    ],
)
def test_a_rule_written_around_validation_is_skipped_with_a_warning_and_the_others_still_fire(settings, caplog, damage):
    settings.MONITORING_ALERT_RULES = [GEO_RULE, VAL_RULE]
    evaluate()  # creates both rules
    AlertRule.objects.filter(name="geo-low").update(**damage)
    report_both("gdelt", geo=10, val=10)
    changes = evaluate()
    assert [(c.kind, c.alert.rule_name) for c in changes] == [("fired", "val-low")]
    assert "alert rule 'geo-low' skipped" in caplog.text


def test_a_broken_rule_leaves_its_open_alert_open(only_geo_rule, caplog):
    """A rule that cannot be evaluated cannot say its condition cleared."""
    report("gdelt", 60)
    (fired,) = evaluate()
    AlertRule.objects.filter(name="geo-low").update(kind="percentile")
    assert evaluate() == []
    assert Alert.objects.get(pk=fired.alert.pk).state == "firing"


def test_a_rule_whose_evaluation_raises_is_skipped_and_the_others_still_fire(settings, monkeypatch, caplog):
    from monitoring.alerting import rules

    drop = {**VAL_RULE, "name": "val-drop", "kind": "score_drop", "critical": 20, "high": 10, "medium": 5}
    settings.MONITORING_ALERT_RULES = [GEO_RULE, drop]

    def broken(spec, inputs):
        raise ZeroDivisionError("data no validation foresaw")

    monkeypatch.setitem(rules.EVALUATORS, "score_drop", broken)
    report_both("gdelt", geo=10, val=10)
    assert [c.alert.rule_name for c in evaluate()] == ["geo-low"]
    assert "alert rule 'val-drop' skipped, its evaluation failed" in caplog.text


def test_a_silence_written_around_validation_is_ignored_with_a_warning(only_geo_rule, caplog):
    report("gdelt", 60)
    silence = create_silence(source="gdelt", ends_at=timezone.now() + timedelta(hours=1), reason="upgrade")
    Silence.objects.filter(pk=silence.pk).update(weekdays="sat", daily_start=time(0), duration_minutes=60)
    (change,) = evaluate()
    assert (change.kind, change.alert.silenced) == ("fired", False)
    assert f"silence {silence.pk} ignored" in caplog.text
