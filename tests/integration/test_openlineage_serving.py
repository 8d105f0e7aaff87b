"""OpenLineage run events against a real server (daphne, PostgreSQL, Redis, a broadcaster): a START→COMPLETE
pair and a START→FAIL pair become runs in the status, and the failure opens the scrape failure-rate alert.

The requests are what openlineage-python's HttpTransport sends (one event per POST, JSON,
``Authorization: Bearer <api_key>``, gzip when ``compression: gzip``), built from the specification's
examples (monitoring/tests/openlineage/examples/).
"""

from __future__ import annotations

import gzip
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.tests.openlineage.spec_examples import example, pipeline_counts, run_event
from tests.integration.cluster import running_cluster

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]
API = "/api/v1/monitoring"
SOURCE = "ol-it-source"


def emit(port: int, key: str, event: dict, *, compress: bool = False) -> dict:
    body = json.dumps(event).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    if compress:
        body, headers["Content-Encoding"] = gzip.compress(body, compresslevel=3), "gzip"
    request = urllib.request.Request(f"http://127.0.0.1:{port}{API}/openlineage", data=body, headers=headers)
    with urllib.request.urlopen(request, timeout=20) as response:  # raises on anything but 2xx, as the transport
        return json.load(response)


def get(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{API}/{path}", timeout=20) as response:
        return json.load(response)


def eventually(read: Callable[[], object], predicate: Callable[[object], bool], *, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = read()
        except (OSError, urllib.error.URLError):
            value = None
        if value is not None and predicate(value):
            return value
        assert time.monotonic() < deadline, f"{what}: last value {value!r}"
        time.sleep(0.2)


def test_openlineage_runs_show_in_the_status_and_a_failure_opens_the_failure_rate_alert(tmp_path):
    from monitoring.models import AlertRule
    from monitoring.services.alerts import ensure_default_rules
    from monitoring.services.tokens import create_ingest_token

    _, key = create_ingest_token(name="airflow-openlineage")
    # The failure rule as shipped needs 5 finished scrape runs of a source; this test has 2.
    ensure_default_rules()
    assert AlertRule.objects.filter(name="scrape-failure-rate").update(min_sample=2) == 1
    now = timezone.now()
    succeeded, failed = str(uuid.uuid4()), str(uuid.uuid4())
    job = {"namespace": "airflow", "name": f"{SOURCE}.scrape"}
    with running_cluster(
        logs=tmp_path,
        servers=("a",),
        broadcasters=1,
        WEBSOCKET_BROADCAST_INTERVAL="1",
        MONITORING_MIN_RUNS="2",  # the status judges a source's failure rate from 2 finished runs
    ) as cluster:
        port = cluster.port("a")
        outcomes = [
            emit(port, key, run_event("START", run_id=succeeded, at=now - timedelta(minutes=30), **job)),
            emit(
                port,
                key,
                run_event(
                    "COMPLETE",
                    run_id=succeeded,
                    at=now - timedelta(minutes=25),
                    run_facets=pipeline_counts(geocoding_attempts=100, geocoding_successes=97),
                    output_facets=example("facet_output_statistics"),
                    **job,
                ),
                compress=True,
            ),
            emit(port, key, run_event("START", run_id=failed, at=now - timedelta(minutes=20), **job)),
            emit(
                port,
                key,
                run_event(
                    "FAIL",
                    run_id=failed,
                    at=now - timedelta(minutes=15),
                    run_facets=example("facet_error_message"),
                    **job,
                ),
            ),
        ]
        assert [o["results"][0]["outcome"] for o in outcomes] == ["applied"] * 4
        # The transport retries what it did not see answered: the same event again changes nothing.
        retried = emit(port, key, run_event("START", run_id=failed, at=now - timedelta(minutes=20), **job))
        assert retried["results"][0]["outcome"] == "duplicate"

        runs = get(port, f"runs?source={SOURCE}")["results"]
        assert sorted((run["status"], run["items_out"], run["error"]) for run in runs) == [
            ("failed", 0, "failed"),
            ("succeeded", 2000, ""),
        ]
        status = get(port, "pipeline-status")
        (source,) = [s for s in status["scraping_health"]["sources"] if s["source"] == SOURCE]
        assert (source["finished_runs"], source["failed_runs"], source["failure_rate"]) == (2, 1, 50.0)
        assert (source["status"], source["last_error"], source["stale"]) == ("critical", "failed", False)
        (quality,) = [q for q in status["data_quality"]["by_source"] if q["source"] == SOURCE]
        assert quality["geocoding_attempts"] == 100  # the counts facet of the COMPLETE

        alert = eventually(
            lambda: [
                a
                for a in get(port, "alerts?state=firing")["results"]
                if a["rule"] == "scrape-failure-rate" and a["source"] == SOURCE
            ],
            bool,
            timeout=20,
            what=f"the scrape failure-rate alert\n{cluster.log_tail('broadcaster-0')}",
        )[0]
        assert alert["severity"] == "critical"
        assert (alert["evidence"]["failed_runs"], alert["evidence"]["finished_runs"]) == (1, 2)
        eventually(
            lambda: get(port, "pipeline-status")["alerts"],
            lambda alerts: any(a["id"] == alert["id"] for a in alerts),
            timeout=10,
            what="the alert in the status document",
        )
