"""run_broadcaster serves its own metrics: ticks, publishes, alert evaluations, webhook deliveries, the lease."""

from __future__ import annotations

import time
import urllib.error

import pytest

from tests.integration.cluster import running_cluster

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def _eventually(read, predicate, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = read()
        except (urllib.error.URLError, ConnectionError):
            value = None
        if value is not None and predicate(value):
            return value
        assert time.monotonic() < deadline, f"last value {value!r}"
        time.sleep(0.2)


def test_the_broadcasters_metrics_move_while_it_publishes_and_show_which_one_holds_the_lease(tmp_path):
    with running_cluster(
        logs=tmp_path,
        servers=("a",),
        broadcasters=2,
        WEBSOCKET_BROADCAST_INTERVAL="1",
        # A webhook nobody answers: deliveries are attempted and counted as retried.
        MONITORING_WEBHOOK_URL="http://127.0.0.1:9/hook",
    ) as cluster:
        ticks = [
            lambda i=i: cluster.broadcaster_metric(i, "conflict_monitor_broadcaster_ticks_total", outcome="published")
            for i in (0, 1)
        ]
        _eventually(lambda: ticks[0]() + ticks[1](), lambda total: total >= 3)
        active = [cluster.broadcaster_metric(i, "conflict_monitor_broadcaster_active") for i in (0, 1)]
        assert sorted(active) == [0, 1], "exactly one broadcaster holds the lease"
        leader = active.index(1)
        before = ticks[leader]()
        _eventually(ticks[leader], lambda now: now >= before + 2)
        assert ticks[1 - leader]() == 0, "the standby publishes nothing"
        publishes = cluster.broadcaster_metric(leader, "conflict_monitor_broadcaster_publishes_total")
        assert publishes >= before + 2
        last = cluster.broadcaster_metric(leader, "conflict_monitor_broadcaster_last_publish_timestamp_seconds")
        assert abs(time.time() - last) < 5
        assert cluster.broadcaster_metric(leader, "conflict_monitor_alert_evaluations_total", outcome="ok") >= 2
        assert cluster.broadcaster_metric(leader, "conflict_monitor_broadcast_seconds_count") >= 2
