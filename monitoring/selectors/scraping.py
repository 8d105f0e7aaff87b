"""Scraping health: each source's newest runs, its failure rate over the window, onboarding."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection

from monitoring.conf import Thresholds
from monitoring.models import PipelineRun, ScrapeSource
from monitoring.selectors.common import CRITICAL, DEGRADED, HEALTHY, NO_DATA, isoformat, rate, worst
from monitoring.windows import db_moment


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
