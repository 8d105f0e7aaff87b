"""deploy/prometheus: the alerting rules pass promtool's check and their own unit tests, every alert has tests
that show it firing and staying quiet, and every metric the rules read is one docs/metrics.md documents.

promtool is Debian's `prometheus` package; .ci/run installs it. Without it these tests fail, never skip.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
METRICS_DOC = ROOT / "docs" / "metrics.md"

SERVER_JOB = "conflict-monitor"
BROADCASTER_JOB = "conflict-monitor-broadcaster"
BROADCASTER_SECTION = "## The broadcaster's metrics"
SEVERITIES = {"page", "ticket"}

_DOC_ROW = re.compile(r"^\|\s*`(conflict_monitor_[a-z0-9_]+)`\s*\|\s*(counter|gauge|histogram)\s*\|", re.MULTILINE)
METRIC_NAME = re.compile(r"\bconflict_monitor_[a-z0-9_]+")
# The series each metric type exports (prometheus-client), from the name the doc gives: a counter is documented
# with its _total, a histogram by its base name.
_SERIES_SUFFIXES = {"counter": ("",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool is missing: .ci/run installs it (Debian's prometheus package); locally run "
            "`apt-get install -y --no-install-recommends prometheus` (see deploy/README.md)"
        )
    return path


def documented_metrics(section: str | None = None) -> dict[str, str]:
    """{name: type} of the metric tables in docs/metrics.md; section "servers" or "broadcaster" for one table."""
    text = METRICS_DOC.read_text()
    servers, marker, broadcaster = text.partition(BROADCASTER_SECTION)
    assert marker, f"docs/metrics.md has no {BROADCASTER_SECTION!r} section"
    parts = {"servers": servers, "broadcaster": broadcaster, None: text}
    return {name: kind for name, kind in _DOC_ROW.findall(parts[section])}


def documented_series() -> dict[str, str]:
    """Every series name the documented metrics export -> the documented metric it belongs to."""
    series: dict[str, str] = {}
    for name, kind in documented_metrics().items():
        for suffix in _SERIES_SUFFIXES[kind]:
            series[name + suffix] = name
    return series


def undocumented_names(expressions: list[str]) -> set[str]:
    """conflict_monitor_* names in the expressions that are no series of a documented metric."""
    series = documented_series()
    return {name for expr in expressions for name in METRIC_NAME.findall(expr) if name not in series}


def _rules() -> list[dict]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def _alerts() -> list[dict]:
    return [rule for rule in _rules() if "alert" in rule]


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_promtool_check_rules_passes():
    result = _run(promtool(), "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout, result.stdout


def test_promtool_rule_unit_tests_pass():
    result = _run(promtool(), "test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout, result.stdout


def test_every_alert_has_a_firing_and_a_quiet_unit_test():
    tests = yaml.safe_load(RULE_TESTS.read_text())
    assert tests["rule_files"] == ["alerts.yml"]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in _alerts()}
    assert names, "alerts.yml has no alert"
    assert not names - firing, f"alerts never shown firing in alerts_test.yml: {sorted(names - firing)}"
    assert not names - quiet, f"alerts never shown quiet in alerts_test.yml: {sorted(names - quiet)}"
    assert not (firing | quiet) - names, f"tests of alerts that do not exist: {sorted((firing | quiet) - names)}"


def test_the_required_conditions_are_covered():
    """The issue's list: each condition has a rule that reads its metric."""
    expressions = " ".join(rule["expr"] for rule in _alerts())
    for needle in (
        "conflict_monitor_broadcaster_last_publish_timestamp_seconds",
        "conflict_monitor_broadcaster_active",
        "conflict_monitor_feed_status_stale",
        'conflict_monitor_webhook_deliveries_total{job="conflict-monitor-broadcaster",outcome="failed"}',
        'conflict_monitor_webhook_deliveries_total{job="conflict-monitor-broadcaster",outcome="retried"}',
        "conflict_monitor_ws_refused_total",
        'status="5xx"',
        "histogram_quantile(0.95",
        "histogram_quantile(0.99",
        "conflict_monitor_broadcast_seconds_bucket",
        'conflict_monitor_broadcaster_ticks_total{job="conflict-monitor-broadcaster",outcome="failed"}',
        'conflict_monitor_alert_evaluations_total{job="conflict-monitor-broadcaster",outcome="failed"}',
        'up{job=~"conflict-monitor|conflict-monitor-broadcaster"} == 0',
    ):
        assert needle in expressions, f"no alert reads {needle}"


def test_every_alert_has_severity_and_annotations_for_on_call():
    for rule in _alerts():
        name = rule["alert"]
        assert name.startswith("ConflictMonitor"), name
        assert rule.get("labels", {}).get("severity") in SEVERITIES, f"{name}: severity must be one of {SEVERITIES}"
        annotations = rule.get("annotations", {})
        for key in ("summary", "description", "runbook"):
            assert str(annotations.get(key, "")).strip(), f"{name}: no {key} annotation"
        for doc in re.findall(r"docs/[a-z0-9_-]+\.md", " ".join(annotations.values())):
            assert (ROOT / doc).is_file(), f"{name} points to {doc}, which does not exist"


def test_every_metric_in_the_rules_is_documented():
    expressions = [rule["expr"] for rule in _rules()]
    used = {name for expr in expressions for name in METRIC_NAME.findall(expr)}
    assert len(used) >= 10, f"the name pattern found too little: {sorted(used)}"
    assert not undocumented_names(expressions), (
        f"alerts.yml reads series docs/metrics.md does not document: {sorted(undocumented_names(expressions))}"
    )


def test_rules_select_each_metric_from_the_job_that_exports_it():
    servers = set(documented_metrics("servers"))
    broadcaster = set(documented_metrics("broadcaster"))
    series = documented_series()
    for rule in _rules():
        for name, matchers in re.findall(r"\b(conflict_monitor_[a-z0-9_]+)\{([^}]*)\}", rule["expr"]):
            job = re.search(r'\bjob="([^"]+)"', matchers)
            assert job, f"{rule.get('alert')}: {name} is selected without a job matcher"
            metric = series.get(name)
            if metric is None:
                continue  # test_every_metric_in_the_rules_is_documented reports it
            exporters = {SERVER_JOB} if metric in servers else set()
            exporters |= {BROADCASTER_JOB} if metric in broadcaster else set()
            assert job.group(1) in exporters, f"{rule.get('alert')}: {name} is not exported by job {job.group(1)}"


def test_the_doc_parser_reads_both_tables_and_the_series_rules():
    servers = documented_metrics("servers")
    broadcaster = documented_metrics("broadcaster")
    assert servers["conflict_monitor_http_request_seconds"] == "histogram"
    assert servers["conflict_monitor_ws_refused_total"] == "counter"
    assert broadcaster["conflict_monitor_broadcaster_active"] == "gauge"
    assert broadcaster["conflict_monitor_broadcast_seconds"] == "histogram"
    assert "conflict_monitor_broadcaster_active" not in servers
    assert (
        undocumented_names(
            [
                "rate(conflict_monitor_broadcast_seconds_bucket[5m])",
                "conflict_monitor_broadcast_seconds_sum / conflict_monitor_broadcast_seconds_count",
                "conflict_monitor_ws_refused_total",
            ]
        )
        == set()
    )
    # A counter without its _total, a suffix a type does not export, a typo: all refused.
    assert undocumented_names(
        [
            "rate(conflict_monitor_ws_refused[5m])",
            "conflict_monitor_broadcaster_active_bucket",
            "conflict_monitor_ws_refused_total_count",
            "conflict_monitor_broadcast_second_bucket",
        ]
    ) == {
        "conflict_monitor_ws_refused",
        "conflict_monitor_broadcaster_active_bucket",
        "conflict_monitor_ws_refused_total_count",
        "conflict_monitor_broadcast_second_bucket",
    }
