"""``GET /metrics/pipeline``: the pipeline's own numbers as Prometheus gauges, from the status document.

Everything comes from ``selectors.pipeline_status`` (the one status computation), so a Grafana panel
and the dashboard read the same window. Rates are percentages (0-100, NaN without attempts); ages are
seconds. Per-source series are capped at ``MONITORING_PIPELINE_METRICS_MAX_SOURCES``: sources in the
worst state and with the most records come first, and ``conflict_monitor_pipeline_sources_omitted``
says how many were left out, so a runaway source list cannot blow up a Prometheus server.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import CollectorRegistry

from monitoring.selectors import per_source_status

STATUS_CODES = {"no_data": -1, "healthy": 0, "degraded": 1, "critical": 2}
PREFIX = "conflict_monitor_pipeline"
SEVERITIES = ("critical", "high", "medium")


def _value(number: float | None) -> float:
    return math.nan if number is None else float(number)


def _age(*, now: datetime, moment: str | None) -> float:
    return math.nan if moment is None else (now - datetime.fromisoformat(moment)).total_seconds()


def _ranked_sources(document: dict[str, Any]) -> list[str]:
    quality = {row["source"]: row for row in document["data_quality"]["by_source"]}
    scraping = {row["source"]: row for row in document["scraping_health"]["sources"]}
    names = quality.keys() | scraping.keys()

    def rank(name: str) -> tuple:
        statuses = [row["status"] for row in (quality.get(name), scraping.get(name)) if row]
        worst = max((STATUS_CODES.get(s, -1) for s in statuses), default=-1)
        return (-worst, -(quality.get(name, {}).get("geocoding_attempts") or 0), name)

    return sorted(names, key=rank)


class _Collector:
    def __init__(self, *, document: dict[str, Any], now: datetime, max_sources: int) -> None:
        self.document = document
        self.now = now
        self.max_sources = max_sources

    def collect(self) -> Iterator[GaugeMetricFamily]:
        doc = self.document
        quality, scraping = doc["data_quality"], doc["scraping_health"]
        ranked = _ranked_sources(doc)
        kept = set(ranked[: self.max_sources])

        def gauge(name: str, documentation: str, labels: tuple[str, ...] = ()) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"{PREFIX}_{name}", documentation, labels=list(labels))

        overall = gauge("status", "Overall status: -1 no_data, 0 healthy, 1 degraded, 2 critical.")
        overall.add_metric([], STATUS_CODES.get(doc["overall_status"], -1))
        window = gauge("window_hours", "Hours the window rates and counts cover.")
        window.add_metric([], doc["window_hours"])
        rates = gauge("success_rate_percent", "Window rate over all sources, percent.", ("stage",))
        rates.add_metric(["geocode"], _value(quality["geocoding_success_rate"]))
        rates.add_metric(["validate"], _value(quality["validation_pass_rate"]))
        records = gauge("records", "Records (geocoding attempts) in the window, all sources.")
        records.add_metric([], quality["geocoding_attempts"])
        omitted = gauge("sources_omitted", "Sources left out of the per-source series by the cap.")
        omitted.add_metric([], len(ranked) - len(kept))
        yield from (overall, window, rates, records, omitted)

        status = gauge("source_status", "Source status: -1 no_data, 0 healthy, 1 degraded, 2 critical.", ("source",))
        source_rates = gauge("source_success_rate_percent", "Window rate per source, percent.", ("source", "stage"))
        source_records = gauge("source_records", "Records (geocoding attempts) in the window.", ("source",))
        reports = gauge("source_reports", "Metric reports (batches) in the window.", ("source",))
        age = gauge("source_last_report_age_seconds", "Seconds since the newest metric report.", ("source",))
        failures = gauge("source_scrape_failure_rate_percent", "Failed share of finished scrape runs.", ("source",))
        scrape_age = gauge("source_last_success_age_seconds", "Seconds since the last successful scrape.", ("source",))
        for row in quality["by_source"]:
            if row["source"] not in kept:
                continue
            name = row["source"]
            source_rates.add_metric([name, "geocode"], _value(row["geocoding_success_rate"]))
            source_rates.add_metric([name, "validate"], _value(row["validation_pass_rate"]))
            source_records.add_metric([name], row["geocoding_attempts"])
            reports.add_metric([name], row["reports"])
            age.add_metric([name], _age(now=self.now, moment=row["last_updated"]))
        for row in scraping["sources"]:
            if row["source"] in kept:
                failures.add_metric([row["source"]], _value(row["failure_rate"]))
                scrape_age.add_metric([row["source"]], _age(now=self.now, moment=row["last_success"]))
        for name, detail in sorted(per_source_status(doc).items()):
            if name in kept:
                status.add_metric([name], STATUS_CODES.get(detail["status"], -1))
        yield from (status, source_rates, source_records, reports, age, failures, scrape_age)

        alerts = gauge("alerts_open", "Open (firing or acknowledged) alerts by severity.", ("severity",))
        counts = Counter(alert["severity"] for alert in doc["alerts"])
        for severity in SEVERITIES:
            alerts.add_metric([severity], counts.get(severity, 0))
        yield alerts


def render(*, document: dict[str, Any], now: datetime, max_sources: int) -> bytes:
    """The Prometheus text exposition of ``document``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(document=document, now=now, max_sources=max_sources))
    return generate_latest(registry)
