"""The one place that computes pipeline status.

The REST view, the management command (and the live feed) call :func:`pipeline_status` and only
format its result. Sums and counts come from database aggregates; Python only turns a handful of
aggregated numbers into rates and statuses. Metric sums come from the one window computation
(:mod:`monitoring.windows`); the other queries are hand-written SQL that runs on PostgreSQL and SQLite
alike: building and compiling them with the ORM took longer than running them.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from monitoring.anomaly.series import recent_anomalies
from monitoring.conf import Thresholds, default_window_hours, thresholds
from monitoring.models import Alert, PipelineRun, ScrapeSource
from monitoring.models.metrics import COUNT_FIELDS
from monitoring.windows import add_up, db_moment, floor_hour, newest_report, window_sums

logger = logging.getLogger(__name__)

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


def data_quality(*, now: datetime, window_hours: int, limits: Thresholds) -> dict[str, Any]:
    per_source = window_sums(start=now - timedelta(hours=window_hours), end=now)
    # Totals add up the per-source sums, so they always agree with ``by_source``.
    totals: dict[str, Any] = add_up(per_source)
    # Newest report at any age: reports that stopped before the window began are stale, not "no data".
    newest = newest_report(now=now)
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


_RUNS = PipelineRun._meta.db_table
_SCRAPE = PipelineRun.Stage.SCRAPE.value
_FINISHED_IN_WINDOW = f"""SELECT COUNT(*) FROM {_RUNS} AS r
        WHERE r.stage = '{_SCRAPE}' AND r.source = s.name AND r.finished_at >= %s AND r.finished_at < %s"""  # noqa: S608
# One statement: the known sources with their window's finished and failed runs and their running and
# stuck runs. Per source, the counts are range scans of per-source indexes (the failed runs have their
# own small one), so no run is hashed or read twice. Stage and status are the models' constants written
# into the text, so PostgreSQL can match the partial indexes; the window bounds are parameters.
_SCRAPE_SOURCES = f"""SELECT s.name, s.last_run_at, s.last_success_at, s.last_failure_at, s.last_error,
    ({_FINISHED_IN_WINDOW}),
    ({_FINISHED_IN_WINDOW} AND r.status = '{PipelineRun.Status.FAILED.value}'),
    COALESCE(running.runs, 0), COALESCE(running.stuck, 0),
    (SELECT MIN(f.started_at) FROM {_RUNS} AS f WHERE f.stage = '{_SCRAPE}' AND f.source = s.name)
FROM {ScrapeSource._meta.db_table} AS s
LEFT JOIN (
    SELECT source, COUNT(*) AS runs, SUM(CASE WHEN started_at <= %s THEN 1 ELSE 0 END) AS stuck
    FROM {_RUNS} WHERE stage = '{_SCRAPE}' AND status = '{PipelineRun.Status.RUNNING.value}' GROUP BY source
) AS running ON running.source = s.name
WHERE s.last_run_at > %s
ORDER BY s.name"""  # noqa: S608
_SCRAPE_FIELDS = (
    "name",
    "last_run_at",
    "last_success_at",
    "last_failure_at",
    "last_error",
    "finished",
    "failed",
    "running",
    "stuck",
    "first_run_at",
)


def _scrape_rows(*, now: datetime, window_hours: int, limits: Thresholds) -> list[dict[str, Any]]:
    """Known sources (a run within the retirement period), by name, with their run counts."""
    window = [now - timedelta(hours=window_hours), now]
    params = [
        *window,
        *window,
        now - timedelta(seconds=limits.run_timeout_seconds),
        now - timedelta(seconds=limits.source_retire_after_seconds),
    ]
    with connection.cursor() as cursor:
        cursor.execute(_SCRAPE_SOURCES, [connection.ops.adapt_datetimefield_value(value) for value in params])
        rows = cursor.fetchall()
    return [dict(zip(_SCRAPE_FIELDS, _with_moments(values), strict=True)) for values in rows]


def _with_moments(values: tuple[Any, ...]) -> tuple[Any, ...]:
    name, last_run, last_success, last_failure, *rest, first_run = values
    moments = (db_moment(last_run), db_moment(last_success), db_moment(last_failure))
    return (name, *moments, *rest, db_moment(first_run))


def is_onboarding(*, last_success: datetime | None, first_run: datetime | None, now: datetime) -> bool:
    """New: no successful scrape yet and the first run within ``MONITORING_ONBOARDING_HOURS``."""
    if last_success is not None or first_run is None:
        return False
    return now - first_run < timedelta(hours=settings.MONITORING_ONBOARDING_HOURS)


def _source_health(row: dict[str, Any], *, now: datetime, limits: Thresholds) -> dict[str, Any]:
    last_success = row["last_success_at"]
    stale = last_success is None or (now - last_success).total_seconds() > limits.source_stale_after_seconds
    failure_rate = rate(numerator=row["failed"], denominator=row["finished"])
    return {
        "source": row["name"],
        "status": worst(
            _failure_status(failure_rate=failure_rate, finished=row["finished"], limits=limits),
            DEGRADED if stale or row["stuck"] else HEALTHY,
        ),
        "last_run": isoformat(row["last_run_at"]),
        "last_success": isoformat(last_success),
        "last_failure": isoformat(row["last_failure_at"]),
        "last_error": row["last_error"],
        "stale": stale,
        "new": is_onboarding(last_success=last_success, first_run=row["first_run_at"], now=now),
        "failure_rate": failure_rate,
        "finished_runs": row["finished"],
        "failed_runs": row["failed"],
        "running_runs": row["running"],
        "stuck_runs": row["stuck"],
    }


def scraping_health(*, now: datetime, window_hours: int, limits: Thresholds) -> dict[str, Any]:
    sources = [
        _source_health(row, now=now, limits=limits)
        for row in _scrape_rows(now=now, window_hours=window_hours, limits=limits)
    ]
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
    hour = floor_hour(now)
    key = f"anomalies:{hour.isoformat()}"
    # The cache only saves work: with it unreachable (Redis down) the findings are computed each time,
    # and the status still answers from PostgreSQL.
    try:
        found = cache.get(key)
    except Exception:
        logger.warning("anomaly cache unavailable; computing the findings without it", exc_info=True)
        return recent_anomalies(now=now)
    if found is None:
        found = recent_anomalies(now=now)
        try:
            cache.set(key, found, timeout=settings.MONITORING_ANOMALY_CACHE_SECONDS)
        except Exception:
            logger.warning("anomaly cache unavailable; findings not kept", exc_info=True)
    return found


# How an alert that counts (see :func:`alerts_floor`) raises the headline: medium alerts do not.
ALERT_FLOOR = {"critical": CRITICAL, "high": DEGRADED}
_COUNTING_STATES = frozenset({Alert.State.FIRING.value, Alert.State.ACKNOWLEDGED.value})


def alerts_floor(alerts: list[dict[str, Any]]) -> dict[str, Any]:
    """The floor the alerts put under a status, and the alerts that set it (pure: alert documents in).

    An alert counts while it is open (firing, or acknowledged: someone is on it, the problem is not
    over) and neither silenced nor inhibited; a critical one makes the floor ``critical``, a high one
    ``degraded``, a medium one nothing. ``status`` is null when no alert counts (then the floor
    changes nothing, not even ``no_data``); ``alerts`` are the ids of the counting alerts, in the
    order given.
    """
    counting = [
        alert
        for alert in alerts
        if alert["state"] in _COUNTING_STATES
        and not alert["silenced"]
        and not alert["inhibited"]
        and alert["severity"] in ALERT_FLOOR
    ]
    status = worst(*(ALERT_FLOOR[alert["severity"]] for alert in counting)) if counting else None
    return {"status": status, "alerts": [alert["id"] for alert in counting]}


def with_floor(status: str, floor: dict[str, Any]) -> str:
    """``status`` raised to the floor's (unchanged when the floor has none)."""
    return worst(status, floor["status"]) if floor["status"] else status


def pipeline_status(*, now: datetime | None = None, window_hours: int | None = None) -> dict[str, Any]:
    """The status document served by the REST endpoint, the command and the live feed."""
    now = now or timezone.now()
    window_hours = default_window_hours() if window_hours is None else window_hours
    if not MIN_WINDOW_HOURS <= window_hours <= MAX_WINDOW_HOURS:
        raise ValueError(f"window_hours must be within {MIN_WINDOW_HOURS}..{MAX_WINDOW_HOURS}")
    limits = thresholds()
    scraping = scraping_health(now=now, window_hours=window_hours, limits=limits)
    quality = data_quality(now=now, window_hours=window_hours, limits=limits)
    alerts = active_alerts()
    floor = alerts_floor(alerts)
    return {
        "timestamp": isoformat(now),
        "overall_status": with_floor(worst(scraping["status"], quality["status"]), floor),
        "alerts_floor": floor,
        "window_hours": window_hours,
        "scraping_health": scraping,
        "data_quality": quality,
        "anomalies": current_anomalies(now=now),
        "alerts": alerts,
    }


def per_source_status(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Split a status document into per-source details (no query: derived from the document).

    A source's status is raised by its own alerts exactly as the overall status is by all of them
    (:func:`alerts_floor`); alerts across all sources (no source) only raise the overall status.
    """
    scraping = {row["source"]: row for row in document["scraping_health"]["sources"]}
    quality = {row["source"]: row for row in document["data_quality"]["by_source"]}
    floors = {
        name: alerts_floor([alert for alert in document["alerts"] if alert["source"] == name])
        for name in scraping.keys() | quality.keys()
    }
    return {
        name: {
            "source": name,
            "status": with_floor(
                worst(
                    scraping[name]["status"] if name in scraping else NO_DATA,
                    quality[name]["status"] if name in quality else NO_DATA,
                ),
                floors[name],
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


# The alert's own columns that its document shows; the active-alerts query selects them in this order.
_ALERT_COLUMNS = (
    "id",
    "fingerprint",
    "rule_name",
    "source",
    "severity",
    "state",
    "summary",
    "evidence",
    "first_seen",
    "last_seen",
    "occurrences",
    "silenced",
    "inhibited",
    "acknowledged_at",
    "acknowledge_comment",
    "resolved_at",
    "resolve_comment",
)


def _alert_document(values: dict[str, Any], *, acknowledged_by: str | None, resolved_by: str | None) -> dict[str, Any]:
    return {
        "id": values["id"],
        "fingerprint": values["fingerprint"],
        "rule": values["rule_name"],
        "source": values["source"] or None,
        "severity": values["severity"],
        "state": values["state"],
        "summary": values["summary"],
        "evidence": values["evidence"],
        "first_seen": isoformat(values["first_seen"]),
        "last_seen": isoformat(values["last_seen"]),
        "occurrences": values["occurrences"],
        "silenced": values["silenced"],
        "inhibited": values["inhibited"],
        "acknowledged_by": acknowledged_by,
        "acknowledged_at": isoformat(values["acknowledged_at"]),
        "acknowledge_comment": values["acknowledge_comment"],
        "resolved_by": resolved_by,
        "resolved_at": isoformat(values["resolved_at"]),
        "resolve_comment": values["resolve_comment"],
    }


def alert_dict(alert: Alert) -> dict[str, Any]:
    return _alert_document(
        {column: getattr(alert, column) for column in _ALERT_COLUMNS},
        acknowledged_by=alert.acknowledged_by.get_username() if alert.acknowledged_by else None,
        resolved_by=alert.resolved_by.get_username() if alert.resolved_by else None,
    )


@lru_cache(maxsize=1)
def _active_alerts_sql() -> str:
    """Active alerts with the usernames of who acknowledged / resolved them (built once the user model is known)."""
    user = get_user_model()._meta
    username = user.get_field(get_user_model().USERNAME_FIELD).column
    columns = ", ".join(f"a.{column}" for column in _ALERT_COLUMNS)
    states = ", ".join(f"'{state}'" for state in (Alert.State.FIRING.value, Alert.State.ACKNOWLEDGED.value))
    # Identifiers come from the models, the states are the model's constants.
    return (
        f"SELECT {columns}, ack.{username}, res.{username} FROM {Alert._meta.db_table} AS a "  # noqa: S608
        f"LEFT JOIN {user.db_table} AS ack ON ack.{user.pk.column} = a.acknowledged_by_id "
        f"LEFT JOIN {user.db_table} AS res ON res.{user.pk.column} = a.resolved_by_id "
        f"WHERE a.state IN ({states}) ORDER BY a.id"
    )


def _alert_values(row: tuple[Any, ...]) -> dict[str, Any]:
    """Raw columns as the model would read them: JSON decoded, booleans and timestamps on every backend."""
    values = dict(zip(_ALERT_COLUMNS, row, strict=False))
    if isinstance(values["evidence"], str):
        values["evidence"] = json.loads(values["evidence"])
    for name in ("silenced", "inhibited"):
        values[name] = bool(values[name])
    for name in ("first_seen", "last_seen", "acknowledged_at", "resolved_at"):
        values[name] = db_moment(values[name])
    return values


def active_alerts() -> list[dict[str, Any]]:
    """Firing and acknowledged alerts, most severe first, newest first within a severity."""
    with connection.cursor() as cursor:
        cursor.execute(_active_alerts_sql())
        rows = cursor.fetchall()
    alerts = [(_alert_values(row), row[-2], row[-1]) for row in rows]
    alerts.sort(key=lambda alert: (_SEVERITY_ORDER[alert[0]["severity"]], -alert[0]["last_seen"].timestamp()))
    return [
        _alert_document(values, acknowledged_by=acknowledged_by, resolved_by=resolved_by)
        for values, acknowledged_by, resolved_by in alerts
    ]


def list_alerts(
    *, state: str | None = None, severity: str | None = None, source: str | None = None, limit: int = 100
) -> QuerySet[Alert]:
    filters = {name: value for name, value in (("state", state), ("severity", severity), ("source", source)) if value}
    return (
        Alert.objects.filter(**filters)
        .select_related("acknowledged_by", "resolved_by")
        .order_by("-last_seen", "-pk")[:limit]
    )
