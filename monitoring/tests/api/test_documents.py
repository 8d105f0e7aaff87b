"""The response bodies in docs/openapi.yaml name exactly the keys the endpoints send: none undocumented,
none documented as always sent that is missing. Every endpoint answers once, on data that fills every
part of its document (sources with runs and reports, an anomaly, an acknowledged alert, a silence)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
import yaml
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.test import APIClient

from monitoring.models import Alert
from monitoring.services.alerts import acknowledge_alert
from monitoring.services.metrics import MetricInput, record_metrics
from monitoring.services.runs import record_run
from monitoring.services.silences import create_silence

pytestmark = pytest.mark.django_db

SCHEMA = yaml.safe_load((Path(__file__).resolve().parents[3] / "docs" / "openapi.yaml").read_text())
API = "/api/v1/monitoring/"


def resolve(schema: dict) -> dict:
    while "$ref" in schema:
        schema = SCHEMA["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def key_problems(*, value: object, schema: dict, where: str) -> list[str]:
    """Keys of ``value`` that ``schema`` does not document, and required ones that ``value`` lacks."""
    schema = resolve(schema)
    if "allOf" in schema:
        (schema,) = (resolve(part) for part in schema["allOf"])
    if isinstance(value, list) and "items" in schema:
        return [
            p
            for i, item in enumerate(value)
            for p in key_problems(value=item, schema=schema["items"], where=f"{where}[{i}]")
        ]
    if not isinstance(value, dict) or "properties" not in schema:
        return []
    documented = schema["properties"]
    problems = [f"{where}.{key}: sent, not documented" for key in value if key not in documented]
    problems += [
        f"{where}.{key}: documented as always sent, missing" for key in schema.get("required", []) if key not in value
    ]
    for key, item in value.items():
        if key in documented:
            problems += key_problems(value=item, schema=documented[key], where=f"{where}.{key}")
    return problems


def assert_documented(response, *, path: str, method: str = "get") -> None:
    documented = SCHEMA["paths"][API + path][method]["responses"][str(response.status_code)]
    body = documented["content"]["application/json"]["schema"]
    assert key_problems(value=response.json(), schema=body, where=f"{method.upper()} {path}") == []


@pytest.fixture
def operator():
    return get_user_model().objects.create_user(username="operator", password="x-operator-password-1")


@pytest.fixture
def filled(operator):
    """Reports and runs of two sources (one failing), an acknowledged alert, a weekly silence."""
    now = timezone.now()
    for hours, source in ((1, "acled"), (2, "gdelt"), (30, "gdelt")):
        record_metrics(
            metrics=[
                MetricInput(
                    source=source, timestamp=now - timedelta(hours=hours), geocoding_attempts=50, geocoding_successes=40
                )
            ]
        )
    record_run(source="acled", stage="scrape", status="succeeded", started_at=now - timedelta(minutes=9))
    record_run(source="gdelt", stage="scrape", status="failed", started_at=now - timedelta(minutes=8), error="HTTP 503")
    record_run(source="gdelt", stage="scrape")
    alert = Alert.objects.create(
        fingerprint="f",
        rule_name="geocoding-rate-low",
        source="gdelt",
        severity="high",
        summary="s",
        evidence={"rate": 80.0},
    )
    acknowledge_alert(alert_id=alert.pk, user=operator, comment="looking")
    create_silence(
        ends_at=now + timedelta(days=1),
        reason="maintenance",
        weekdays=[5, 6],
        daily_start=now.time(),
        duration_minutes=60,
        user=operator,
    )
    return alert


def test_read_bodies_are_documented_key_for_key(filled, public_read):
    client = APIClient()
    finding = {
        "source": "gdelt",
        "metric": "volume",
        "hour": "2026-11-23T17:00:00Z",
        "direction": "drop",
        "observed": 10,
        "expected": 500.0,
        "expected_low": 225.0,
        "expected_high": 1250.0,
        "score": -9.5,
        "rule": "outage",
        "explanation": "volume outage: 10 records in the last 1.50 h against 750 expected (1 %)",
        "partial": True,
    }
    readiness = {"gdelt": {"state": "ready", "hours_seen": 336, "hours_needed": 24}}
    with mock.patch(
        "monitoring.selectors.status.current_anomalies", return_value={"findings": [finding], "readiness": readiness}
    ):
        status = client.get(API + "pipeline-status")
    assert status.json()["anomalies"] and status.json()["scraping_health"]["sources"]
    assert_documented(status, path="pipeline-status")
    assert_documented(client.get(API + "trends"), path="trends")
    assert_documented(client.get(API + "runs"), path="runs")
    assert_documented(client.get(API + "alerts"), path="alerts")
    detail = client.get(f"{API}alerts/{filled.pk}")
    assert detail.json()["events"]
    assert_documented(detail, path="alerts/{alert_id}")
    assert_documented(client.get(API + "silences"), path="silences")
    assert_documented(client.get(API + "health"), path="health")
    assert_documented(client.get(API + "ready"), path="ready")


def test_write_and_error_bodies_are_documented_key_for_key(filled, operator, ingest_client):
    metrics = ingest_client.post(API + "metrics", [{"source": "acled"}], format="json")
    assert_documented(metrics, path="metrics", method="post")
    run = ingest_client.post(API + "runs", {"source": "acled", "stage": "geocode"}, format="json")
    assert_documented(run, path="runs", method="post")
    finish = f"runs/{run.json()['id']}/finish"
    assert_documented(
        ingest_client.post(API + finish, {"status": "succeeded"}, format="json"),
        path="runs/{run_id}/finish",
        method="post",
    )
    conflict = ingest_client.post(API + finish, {"status": "failed"}, format="json")
    assert conflict.status_code == 409
    assert_documented(conflict, path="runs/{run_id}/finish", method="post")
    invalid = ingest_client.post(API + "metrics", [{"source": "!"}], format="json")
    assert invalid.status_code == 400
    assert_documented(invalid, path="metrics", method="post")

    session = APIClient()
    session.force_login(operator)
    resolved = session.post(f"{API}alerts/{filled.pk}/resolve", {"comment": "fixed"}, format="json")
    assert_documented(resolved, path="alerts/{alert_id}/resolve", method="post")
    silence = session.post(
        API + "silences", {"ends_at": (timezone.now() + timedelta(hours=1)).isoformat(), "reason": "r"}, format="json"
    )
    assert_documented(silence, path="silences", method="post")
    expired = session.post(f"{API}silences/{silence.json()['id']}/expire")
    assert_documented(expired, path="silences/{silence_id}/expire", method="post")
    assert_documented(session.post(API + "ws-ticket"), path="ws-ticket", method="post")
