"""Ingest through a network that loses 10 % of responses: retries with the same Idempotency-Key end with
every metric stored exactly once."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request

import pytest

from tests.integration.cluster import running_cluster
from tests.reliability.lossy_proxy import LossyProxy

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]
METRICS = 10_000
BATCH = 50


def post(port: int, key: str, idempotency_key: str, batch: list[dict]) -> tuple[int, dict, bool]:
    request = urllib.request.Request(  # noqa: S310 (http://127.0.0.1 only)
        f"http://127.0.0.1:{port}/api/v1/monitoring/metrics",
        data=json.dumps(batch).encode(),
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Token {key}",
            "Idempotency-Key": idempotency_key,
            "Connection": "close",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return response.status, json.load(response), response.headers.get("Idempotent-Replayed") == "true"


def test_retries_through_a_lossy_network_store_every_metric_exactly_once(tmp_path):
    from monitoring.models import DataQualityMetric, HourlyRollup
    from monitoring.services.tokens import create_ingest_token

    _, key = create_ingest_token(name="lossy-pipeline")
    metrics = [
        {"source": f"s{i % 7}", "geocoding_attempts": 10 + i % 90, "geocoding_successes": i % 10}
        for i in range(METRICS)
    ]
    # About 220 requests with one token, as fast as answers come: this test is about retries, not the limit.
    with running_cluster(logs=tmp_path, servers=("a",), broadcasters=0, API_THROTTLE_INGEST="off") as cluster:
        proxy = LossyProxy(upstream=("127.0.0.1", cluster.port("a")), loss=0.10, seed=20261202).start()
        try:
            replays = lost = 0
            for start in range(0, METRICS, BATCH):
                batch = metrics[start : start + BATCH]
                for attempt in range(20):
                    try:
                        status, body, replayed = post(proxy.port, key, f"batch-{start}", batch)
                    except (urllib.error.URLError, http.client.HTTPException, ConnectionError):
                        continue  # no answer: the same key again
                    assert (status, body["created"]) == (201, len(batch))
                    replays += replayed
                    lost += attempt > 0
                    break
                else:
                    pytest.fail(f"batch {start} never got an answer")
            # Counted once per committed row: a replayed answer stores and counts nothing again.
            assert cluster.metric("a", "conflict_monitor_ingested_rows_total", kind="metric") == METRICS
        finally:
            proxy.stop()

    assert proxy.dropped >= 0.05 * (METRICS // BATCH), "the network lost too little to prove anything"
    assert DataQualityMetric.objects.count() == METRICS
    assert sum(HourlyRollup.objects.values_list("reports", flat=True)) == METRICS
    stored = sorted(DataQualityMetric.objects.values_list("source", "geocoding_attempts", "geocoding_successes"))
    sent = sorted((m["source"], m["geocoding_attempts"], m["geocoding_successes"]) for m in metrics)
    assert stored == sent  # nothing lost, nothing doubled
    # The proxy drops answers only after the server did the work: every batch that lost an answer got the
    # stored one back on its retry, and no other batch did.
    assert replays == lost > 0
    print(
        f"\n{METRICS:,} metrics in {METRICS // BATCH} batches; answers dropped by the proxy: {proxy.dropped}; "
        f"batches retried and answered from the idempotency record: {replays}; rows stored: {METRICS:,}"
    )
