"""The monitor's own metrics, exposed at ``GET /metrics`` in the Prometheus text format.

Counters live per process (each daphne and broadcaster counts what it did; Prometheus scrapes each
instance). Figures the database already holds, such as alerts by state, are read at scrape time
instead of counted, so every process reports the same truth and nothing drifts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from django.db import DatabaseError, connection
from django.db.models import Count
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector

logger = logging.getLogger(__name__)

INGESTED = Counter(
    "conflict_monitor_ingested_rows",
    "Rows committed by ingest (metrics and pipeline runs), per kind.",
    ["kind"],
)


HTTP_RESPONSES = Counter(
    "conflict_monitor_http_responses",
    "HTTP responses, per URL pattern (unmatched: none) and status class (2xx, 4xx, 5xx, ...).",
    ["route", "status"],
)
HTTP_SECONDS = Histogram(
    "conflict_monitor_http_request_seconds",
    "From a request's arrival to its response's start and body, per URL pattern.",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


WS_CONNECTIONS = Gauge("conflict_monitor_ws_connections", "Live-feed sockets open in this process.")
WS_REFUSED = Counter(
    "conflict_monitor_ws_refused", "Live-feed sockets refused at the handshake, per reason.", ["reason"]
)
WS_FRAMES_SENT = Counter("conflict_monitor_ws_frames_sent", "Topic frames sent to sockets (live and replayed).")
WS_REFUSED_FRAMES = Counter(
    "conflict_monitor_ws_refused_frames",
    "Client frames refused (invalid, too large, flooding), per error code.",
    ["code"],
)
WS_POLICY_CLOSES = Counter(
    "conflict_monitor_ws_policy_closes", "Live-feed sockets closed with 4008 after too many refused frames."
)
FEED_STATUS_STALE = Gauge(
    "conflict_monitor_feed_status_stale", "1 while this process tells its sockets that the status is stale, else 0."
)
FEED_STALE = Counter(
    "conflict_monitor_feed_stale",
    "Times this process marked the status stale, per reason (a change of reason counts again).",
    ["reason"],
)
WS_RESUMES = Counter("conflict_monitor_ws_resumes", "Resume outcomes: replayed from history, or resync.", ["outcome"])
FEED_DELIVERY_SECONDS = Histogram(
    "conflict_monitor_feed_delivery_seconds",
    "From a frame's publish to its hand-off to the last socket of this process that follows its topic.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
BROADCAST_SECONDS = Histogram(
    "conflict_monitor_broadcast_seconds",
    "Duration of one broadcaster tick: status computation, alert evaluation and publishing.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
# The broadcaster's own (served by run_broadcaster on MONITORING_BROADCASTER_METRICS_PORT).
BROADCASTER_TICKS = Counter(
    "conflict_monitor_broadcaster_ticks",
    "Broadcaster ticks, per outcome: published, or failed (status not computed or not published).",
    ["outcome"],
)
BROADCASTER_PUBLISHES = Counter(
    "conflict_monitor_broadcaster_publishes", "Status documents the broadcaster published to the live feed."
)
BROADCASTER_LAST_PUBLISH = Gauge(
    "conflict_monitor_broadcaster_last_publish_timestamp_seconds",
    "Unix time of the last status this broadcaster published (0 before the first).",
)
BROADCASTER_ACTIVE = Gauge(
    "conflict_monitor_broadcaster_active", "1 while this broadcaster holds the lease and publishes, 0 on standby."
)
ALERT_EVALUATIONS = Counter(
    "conflict_monitor_alert_evaluations", "Alert rule evaluations, per outcome: ok or failed.", ["outcome"]
)
WEBHOOK_DELIVERIES = Counter(
    "conflict_monitor_webhook_deliveries",
    "Webhook delivery attempts, per outcome: sent, retried (will try again) or failed (given up).",
    ["outcome"],
)
NOTIFICATION_NOTICES = Counter(
    "conflict_monitor_notification_notices",
    "Notices sent: one per alert group and send, however many alert changes it carries.",
)


def count_ingested(*, kind: str, rows: int) -> None:
    """Count ``rows`` of ``kind`` once their transaction has committed (a rollback counts nothing)."""
    INGESTED.labels(kind=kind).inc(rows)


def _alerts_family() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "conflict_monitor_alerts", "Alerts in the database, per state and severity.", labels=["state", "severity"]
    )


class AlertCollector(Collector):
    """Alerts by state and severity, from the database at scrape time."""

    def describe(self) -> Iterator[Metric]:
        # Without it, registering would call collect() and query the database at start-up.
        yield _alerts_family()

    def collect(self) -> Iterator[Metric]:
        from monitoring.models import Alert

        family = _alerts_family()
        try:
            counts = {
                (row["state"], row["severity"]): row["n"]
                for row in Alert.objects.values("state", "severity").annotate(n=Count("id")).order_by()
            }
        except DatabaseError:
            # No figure beats a wrong zero: the series is absent until the database answers.
            logger.warning("metrics: alert counts unavailable", exc_info=True)
            return
        finally:
            # A scrape served outside Django's request cycle (run_broadcaster's metrics server starts a thread
            # per scrape) would otherwise keep its thread's connection out of the pool for good.
            if not connection.in_atomic_block:
                connection.close()
        for state in Alert.State.values:
            for severity in Alert.Severity.values:
                family.add_metric([state, severity], counts.get((state, severity), 0))
        yield family


_registered = False


def register_collectors() -> None:
    """Once per process (AppConfig.ready)."""
    global _registered
    if not _registered:
        REGISTRY.register(AlertCollector())
        _registered = True
