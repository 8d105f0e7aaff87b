"""deploy/grafana/dashboard.json: an importable dashboard whose every query reads metrics docs/metrics.md documents.

Structure is checked as Grafana needs it for an import (schema version, the data-source variable, unique panel
ids, a grid position each); each query is parsed by promtool (Grafana's variables replaced by sample values), so a
typo in PromQL fails here rather than as an empty panel.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.test_deploy_prometheus import METRIC_NAME, promtool, undocumented_names

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboard.json"
GRID_COLUMNS = 24
# Sample values for Grafana's variables, so that the queries are plain PromQL for promtool.
VARIABLE_SAMPLES = {
    "$__rate_interval": "5m",
    "$broadcaster_job": "conflict-monitor-broadcaster",
    "$job": "conflict-monitor",
    "$instance": ".*",
}
# The panel list, each by a metric (or series) some panel's query must read.
REQUIRED_METRICS = {
    "HTTP request rate and 5xx ratio per route": "conflict_monitor_http_responses_total",
    "request duration p50/p95/p99": "conflict_monitor_http_request_seconds_bucket",
    "live-feed sockets open": "conflict_monitor_ws_connections",
    "refused sockets by reason": "conflict_monitor_ws_refused_total",
    "frames sent rate": "conflict_monitor_ws_frames_sent_total",
    "feed delivery latency p99": "conflict_monitor_feed_delivery_seconds_bucket",
    "feed stale flag": "conflict_monitor_feed_status_stale",
    "broadcaster active per instance": "conflict_monitor_broadcaster_active",
    "tick duration p95": "conflict_monitor_broadcast_seconds_bucket",
    "ticks by outcome": "conflict_monitor_broadcaster_ticks_total",
    "last publish age": "conflict_monitor_broadcaster_last_publish_timestamp_seconds",
    "alert evaluations": "conflict_monitor_alert_evaluations_total",
    "webhook deliveries by outcome": "conflict_monitor_webhook_deliveries_total",
    "ingested rows rate by kind": "conflict_monitor_ingested_rows_total",
    "alerts by state/severity": "conflict_monitor_alerts",
}


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def _panels(dashboard: dict) -> list[dict]:
    """Every panel, including those nested in collapsed rows."""
    panels = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return panels


def _query_panels(dashboard: dict) -> list[dict]:
    return [panel for panel in _panels(dashboard) if panel.get("type") != "row"]


def _expressions(dashboard: dict) -> list[str]:
    return [target["expr"] for panel in _query_panels(dashboard) for target in panel["targets"]]


def test_dashboard_header(dashboard):
    assert dashboard["schemaVersion"] >= 38
    assert dashboard["title"].strip()
    assert dashboard["uid"] and re.fullmatch(r"[A-Za-z0-9_-]{1,40}", dashboard["uid"])
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"


def test_every_variable_a_query_uses_is_defined(dashboard):
    defined = {variable["name"] for variable in dashboard["templating"]["list"]}
    for expr in _expressions(dashboard):
        for name in re.findall(r"\$\{?(\w+)", expr):
            assert name.startswith("__") or name in defined, f"${name} is not a dashboard variable: {expr}"


def test_every_panel_has_an_id_a_title_and_a_place(dashboard):
    panels = _panels(dashboard)
    assert len(_query_panels(dashboard)) >= len(REQUIRED_METRICS) - 2  # some panels answer two items
    ids = [panel.get("id") for panel in panels]
    assert all(isinstance(panel_id, int) for panel_id in ids), ids
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {ids}"
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        assert str(panel.get("title", "")).strip(), f"panel {panel.get('id')} has no title"
        grid = panel.get("gridPos")
        assert grid and all(isinstance(grid.get(key), int) for key in ("h", "w", "x", "y")), panel["title"]
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] >= 0 and grid["y"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= GRID_COLUMNS, f"{panel['title']} overflows the grid"
        for row in range(grid["y"], grid["y"] + grid["h"]):
            for column in range(grid["x"], grid["x"] + grid["w"]):
                other = cells.setdefault((row, column), panel["title"])
                assert other == panel["title"], f"{panel['title']} overlaps {other}"


def test_every_query_panel_has_prometheus_targets(dashboard):
    for panel in _query_panels(dashboard):
        assert panel.get("datasource", {}).get("uid") == "${datasource}", panel["title"]
        targets = panel.get("targets")
        assert targets, f"{panel['title']} has no targets"
        ref_ids = [target.get("refId") for target in targets]
        assert len(ref_ids) == len(set(ref_ids)) and all(ref_ids), f"{panel['title']}: refIds {ref_ids}"
        for target in targets:
            assert str(target.get("expr", "")).strip(), f"{panel['title']}: a target has no expr"


def test_every_metric_in_the_queries_is_documented(dashboard):
    expressions = _expressions(dashboard)
    assert undocumented_names(expressions) == set(), (
        f"dashboard.json reads series docs/metrics.md does not document: {sorted(undocumented_names(expressions))}"
    )


def test_the_required_panels_are_there(dashboard):
    read = {name for expr in _expressions(dashboard) for name in METRIC_NAME.findall(expr)}
    missing = {item: metric for item, metric in REQUIRED_METRICS.items() if metric not in read}
    assert not missing, f"no panel reads: {missing}"
    everything = " ".join(_expressions(dashboard))
    assert 'status="5xx"' in everything and "sum by (route)" in everything
    for quantile in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({quantile}, sum by (le) (rate(conflict_monitor_http_request_seconds" in everything


def test_every_query_is_valid_promql(dashboard, tmp_path):
    """promtool parses each query, as a recording rule, with Grafana's variables replaced by sample values."""
    rules = []
    for index, expr in enumerate(_expressions(dashboard)):
        for variable, sample in sorted(VARIABLE_SAMPLES.items(), key=lambda item: -len(item[0])):
            expr = expr.replace(variable, sample)
        assert "$" not in expr, f"a variable with no sample value: {expr}"
        rules.append({"record": f"dashboard:query_{index}", "expr": expr})
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
