"""The one place that computes pipeline status.

The REST view, the management command (and the live feed) call :func:`pipeline_status` and only
format its result. Sums and counts come from database aggregates; Python only turns a handful of
aggregated numbers into rates and statuses. Metric sums come from the one window computation
(:mod:`monitoring.windows`); the other queries are hand-written SQL that runs on PostgreSQL and SQLite
alike: building and compiling them with the ORM took longer than running them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from monitoring.anomaly.series import not_started, starting
from monitoring.conf import default_window_hours, thresholds
from monitoring.selectors.alerts import active_alerts, alerts_floor, with_floor
from monitoring.selectors.anomalies import current_anomalies
from monitoring.selectors.common import MAX_WINDOW_HOURS, MIN_WINDOW_HOURS, NO_DATA, isoformat, worst
from monitoring.selectors.quality import data_quality
from monitoring.selectors.scraping import scraping_health


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
    anomalies = current_anomalies(now=now)
    unknown = starting() if anomalies.get("starting") else not_started()
    for row in quality["by_source"]:
        row["anomaly_detection"] = anomalies["readiness"].get(row["source"]) or unknown
    return {
        "timestamp": isoformat(now),
        "overall_status": with_floor(worst(scraping["status"], quality["status"]), floor),
        "alerts_floor": floor,
        "window_hours": window_hours,
        "scraping_health": scraping,
        "data_quality": quality,
        "anomalies": anomalies["findings"],
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
