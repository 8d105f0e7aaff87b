"""The one place that computes pipeline status.

The REST view, the management command (and the live feed) call :func:`pipeline_status` and only
format its result. Sums and counts come from database aggregates; Python only turns a handful of
aggregated numbers into rates and statuses.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Max, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from monitoring.anomaly.series import recent_anomalies
from monitoring.conf import Thresholds, default_window_hours, thresholds
from monitoring.models import Alert, DataQualityMetric, HourlyRollup, PipelineRun, ScrapeSource
from monitoring.models.metrics import COUNT_FIELDS

HEALTHY = "healthy"
DEGRADED = "degraded"
CRITICAL = "critical"
NO_DATA = "no_data"
_SEVERITY = {HEALTHY: 0, DEGRADED: 1, CRITICAL: 2}

MIN_WINDOW_HOURS = 1
MAX_WINDOW_HOURS = 720


def rate(*, numerator: int, denominator: int) -> float:
    """Percentage rounded half-up to one decimal; 0.0 when there is nothing to divide by."""
    if denominator <= 0:
        return 0.0
    value = Decimal(numerator) * 100 / Decimal(denominator)
    return float(value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def worst(*statuses: str) -> str:
    """The most severe status; ``no_data`` only when no component has data."""
    known = [s for s in statuses if s != NO_DATA]
    return max(known, key=_SEVERITY.__getitem__) if known else NO_DATA


def isoformat(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _rate_status(*, value: float, attempts: int, warn: float, critical: float, min_sample: int) -> str:
    if attempts < min_sample:
        return NO_DATA
    if value < critical:
        return CRITICAL
    if value < warn:
        return DEGRADED
    return HEALTHY


def _quality_block(row: dict[str, Any], *, limits: Thresholds) -> dict[str, Any]:
    geocoding = rate(numerator=row["geocoding_successes"], denominator=row["geocoding_attempts"])
    validation = rate(numerator=row["validation_passes"], denominator=row["validation_attempts"])
    status = worst(
        _rate_status(
            value=geocoding,
            attempts=row["geocoding_attempts"],
            warn=limits.geocoding_warn,
            critical=limits.geocoding_critical,
            min_sample=limits.min_sample_size,
        ),
        _rate_status(
            value=validation,
            attempts=row["validation_attempts"],
            warn=limits.validation_warn,
            critical=limits.validation_critical,
            min_sample=limits.min_sample_size,
        ),
    )
    return {
        "status": status,
        "geocoding_success_rate": geocoding,
        "validation_pass_rate": validation,
        **{field: row[field] for field in COUNT_FIELDS},
        "total_geocoded": row["geocoding_successes"],
        "total_validated": row["validation_passes"],
        "reports": row["reports"],
        "last_updated": isoformat(row["last_updated"]),
    }


def _raw_aggregates() -> dict[str, Any]:
    return {
        **{field: Coalesce(Sum(field), 0) for field in COUNT_FIELDS},
        "reports": Count("*"),
        "last_updated": Max("timestamp"),
    }


def _rollup_aggregates() -> dict[str, Any]:
    return {
        **{field: Coalesce(Sum(field), 0) for field in COUNT_FIELDS},
        "reports": Coalesce(Sum("reports"), 0),
        "last_updated": Max("last_report_at"),
    }


def window_sums(*, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Per-source sums of the metrics with ``start < timestamp <= end``, sorted by source.

    Whole UTC hours come from the hourly rollups ingest keeps, and only the two partial hours at the
    edges from the raw metrics, so the cost follows the window's length in hours, not the number of
    stored metrics.
    """
    first_whole = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    after_whole = end.astimezone(UTC).replace(minute=0, second=0, microsecond=0)

    def raw(**window: datetime) -> QuerySet:
        return DataQualityMetric.objects.filter(**window).values("source").annotate(**_raw_aggregates()).order_by()

    if first_whole >= after_whole:
        rows = list(raw(timestamp__gt=start, timestamp__lte=end))
    else:
        # Two range scans of the covering index in one round trip (an OR of the two would scan it all).
        edges = raw(timestamp__gt=start, timestamp__lt=first_whole).union(
            raw(timestamp__gte=after_whole, timestamp__lte=end), all=True
        )
        rolled = (
            HourlyRollup.objects.filter(hour__gte=first_whole, hour__lt=after_whole)
            .values("source")
            .annotate(**_rollup_aggregates())
            .order_by()
        )
        rows = [*edges, *rolled]
    merged: dict[str, dict[str, Any]] = {}
    for row in rows:
        into = merged.setdefault(row["source"], {"source": row["source"], "last_updated": None})
        for field in (*COUNT_FIELDS, "reports"):
            into[field] = into.get(field, 0) + row[field]
        if row["last_updated"] is not None and (
            into["last_updated"] is None or row["last_updated"] > into["last_updated"]
        ):
            into["last_updated"] = row["last_updated"]
    return [merged[name] for name in sorted(merged) if merged[name]["reports"]]


def data_quality(*, now: datetime, window_hours: int, limits: Thresholds) -> dict[str, Any]:
    per_source = window_sums(start=now - timedelta(hours=window_hours), end=now)
    # Totals add up the per-source sums, so they always agree with ``by_source``.
    totals: dict[str, Any] = {field: sum(row[field] for row in per_source) for field in (*COUNT_FIELDS, "reports")}
    # Newest report at any age: reports that stopped before the window began are stale, not "no data".
    newest = DataQualityMetric.objects.filter(timestamp__lte=now).aggregate(newest=Max("timestamp"))["newest"]
    totals["last_updated"] = newest

    block = _quality_block(totals, limits=limits)
    stale = newest is not None and (now - newest).total_seconds() > limits.data_stale_after_seconds
    if stale:
        block["status"] = worst(block["status"], DEGRADED)
    block["stale"] = stale
    block["window_hours"] = window_hours
    block["by_source"] = [{"source": row["source"], **_quality_block(row, limits=limits)} for row in per_source]
    # A large healthy source can hide a broken small one in the totals; a source in trouble keeps the
    # whole block from reading healthy.
    if any(row["status"] in (DEGRADED, CRITICAL) for row in block["by_source"]):
        block["status"] = worst(block["status"], DEGRADED)
    return block


def _failure_status(*, failure_rate: float, finished: int, limits: Thresholds) -> str:
    if finished < limits.min_runs:
        return NO_DATA
    if failure_rate >= limits.failure_rate_critical:
        return CRITICAL
    if failure_rate >= limits.failure_rate_warn:
        return DEGRADED
    return HEALTHY


def scraping_health(*, now: datetime, window_hours: int, limits: Thresholds) -> dict[str, Any]:
    start = now - timedelta(hours=window_hours)
    known = ScrapeSource.objects.filter(last_run_at__gt=now - timedelta(seconds=limits.source_retire_after_seconds))
    scrapes = PipelineRun.objects.filter(stage=PipelineRun.Stage.SCRAPE)
    finished = {
        row["source"]: row
        for row in scrapes.filter(finished_at__gt=start, finished_at__lte=now)
        .values("source")
        .annotate(finished=Count("pk"), failed=Count("pk", filter=Q(status=PipelineRun.Status.FAILED)))
    }
    running = {
        row["source"]: row
        for row in scrapes.filter(status=PipelineRun.Status.RUNNING)
        .values("source")
        .annotate(
            running=Count("pk"),
            stuck=Count("pk", filter=Q(started_at__lte=now - timedelta(seconds=limits.run_timeout_seconds))),
        )
    }
    sources = []
    for source in known.order_by("name"):
        counts = finished.get(source.name, {"finished": 0, "failed": 0})
        active = running.get(source.name, {"running": 0, "stuck": 0})
        last_success = source.last_success_at
        stale = last_success is None or (now - last_success).total_seconds() > limits.source_stale_after_seconds
        failure_rate = rate(numerator=counts["failed"], denominator=counts["finished"])
        sources.append(
            {
                "source": source.name,
                "status": worst(
                    _failure_status(failure_rate=failure_rate, finished=counts["finished"], limits=limits),
                    DEGRADED if stale or active["stuck"] else HEALTHY,
                ),
                "last_run": isoformat(source.last_run_at),
                "last_success": isoformat(last_success),
                "last_failure": isoformat(source.last_failure_at),
                "last_error": source.last_error,
                "stale": stale,
                "failure_rate": failure_rate,
                "finished_runs": counts["finished"],
                "failed_runs": counts["failed"],
                "running_runs": active["running"],
                "stuck_runs": active["stuck"],
            }
        )
    status = worst(*(s["status"] for s in sources))
    if sources and all(s["stale"] for s in sources):
        status = CRITICAL  # with every scraper silent, no new event can enter the pipeline
    return {
        "status": status,
        "stale_sources": sum(1 for s in sources if s["stale"]),
        "sources": sources,
    }


def current_anomalies(*, now: datetime) -> list[dict[str, Any]]:
    """The detector's findings for the last complete hour, cached per hour for a short while."""
    hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    key = f"anomalies:{hour.isoformat()}"
    found = cache.get(key)
    if found is None:
        found = recent_anomalies(now=now)
        cache.set(key, found, timeout=settings.MONITORING_ANOMALY_CACHE_SECONDS)
    return found


def pipeline_status(*, now: datetime | None = None, window_hours: int | None = None) -> dict[str, Any]:
    """The status document served by the REST endpoint, the command and the live feed."""
    now = now or timezone.now()
    window_hours = default_window_hours() if window_hours is None else window_hours
    if not MIN_WINDOW_HOURS <= window_hours <= MAX_WINDOW_HOURS:
        raise ValueError(f"window_hours must be within {MIN_WINDOW_HOURS}..{MAX_WINDOW_HOURS}")
    limits = thresholds()
    scraping = scraping_health(now=now, window_hours=window_hours, limits=limits)
    quality = data_quality(now=now, window_hours=window_hours, limits=limits)
    return {
        "timestamp": isoformat(now),
        "overall_status": worst(scraping["status"], quality["status"]),
        "window_hours": window_hours,
        "scraping_health": scraping,
        "data_quality": quality,
        "anomalies": current_anomalies(now=now),
        "alerts": active_alerts(),
    }


def per_source_status(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Split a status document into per-source details (no query: derived from the document)."""
    scraping = {row["source"]: row for row in document["scraping_health"]["sources"]}
    quality = {row["source"]: row for row in document["data_quality"]["by_source"]}
    return {
        name: {
            "source": name,
            "status": worst(
                scraping[name]["status"] if name in scraping else NO_DATA,
                quality[name]["status"] if name in quality else NO_DATA,
            ),
            "scraping": scraping.get(name),
            "data_quality": quality.get(name),
            "window_hours": document["window_hours"],
        }
        for name in sorted(scraping.keys() | quality.keys())
    }


def list_runs(
    *, source: str | None = None, stage: str | None = None, status: str | None = None, limit: int = 50
) -> QuerySet[PipelineRun]:
    """Newest runs first, optionally filtered."""
    filters = {name: value for name, value in (("source", source), ("stage", stage), ("status", status)) if value}
    return PipelineRun.objects.filter(**filters).order_by("-started_at", "-pk")[:limit]


_SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2}


def alert_dict(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.pk,
        "fingerprint": alert.fingerprint,
        "rule": alert.rule_name,
        "source": alert.source or None,
        "severity": alert.severity,
        "state": alert.state,
        "summary": alert.summary,
        "evidence": alert.evidence,
        "first_seen": isoformat(alert.first_seen),
        "last_seen": isoformat(alert.last_seen),
        "occurrences": alert.occurrences,
        "silenced": alert.silenced,
        "inhibited": alert.inhibited,
        "acknowledged_by": alert.acknowledged_by.get_username() if alert.acknowledged_by else None,
        "acknowledged_at": isoformat(alert.acknowledged_at),
        "acknowledge_comment": alert.acknowledge_comment,
        "resolved_by": alert.resolved_by.get_username() if alert.resolved_by else None,
        "resolved_at": isoformat(alert.resolved_at),
        "resolve_comment": alert.resolve_comment,
    }


def active_alerts() -> list[dict[str, Any]]:
    """Firing and acknowledged alerts, most severe first, newest first within a severity."""
    alerts = Alert.objects.filter(state__in=["firing", "acknowledged"]).select_related("acknowledged_by", "resolved_by")
    ordered = sorted(alerts, key=lambda a: (_SEVERITY_ORDER[a.severity], -a.last_seen.timestamp()))
    return [alert_dict(alert) for alert in ordered]


def list_alerts(
    *, state: str | None = None, severity: str | None = None, source: str | None = None, limit: int = 100
) -> QuerySet[Alert]:
    filters = {name: value for name, value in (("state", state), ("severity", severity), ("source", source)) if value}
    return (
        Alert.objects.filter(**filters)
        .select_related("acknowledged_by", "resolved_by")
        .order_by("-last_seen", "-pk")[:limit]
    )
