"""The read side, by concern: :mod:`.status` builds the status document (the one place that does),
:mod:`.scraping` and :mod:`.quality` its two halves, :mod:`.anomalies` the anomaly judgement it shows,
:mod:`.alerts` the alert reads, :mod:`.runs` the
run listing, :mod:`.common` the statuses and formats they share. Windows over raw rows and rollups
are :mod:`monitoring.windows`. Callers import from here.
"""

from monitoring.selectors.alerts import ALERT_FLOOR, active_alerts, alert_dict, alerts_floor, list_alerts, with_floor
from monitoring.selectors.anomalies import current_anomalies
from monitoring.selectors.common import (
    CRITICAL,
    DEGRADED,
    HEALTHY,
    MAX_WINDOW_HOURS,
    MIN_WINDOW_HOURS,
    NO_DATA,
    isoformat,
    rate,
    worst,
)
from monitoring.selectors.quality import data_quality
from monitoring.selectors.runs import list_runs
from monitoring.selectors.scraping import is_onboarding, scraping_health
from monitoring.selectors.status import per_source_status, pipeline_status

__all__ = [
    "ALERT_FLOOR",
    "CRITICAL",
    "DEGRADED",
    "HEALTHY",
    "MAX_WINDOW_HOURS",
    "MIN_WINDOW_HOURS",
    "NO_DATA",
    "active_alerts",
    "alert_dict",
    "alerts_floor",
    "current_anomalies",
    "data_quality",
    "is_onboarding",
    "isoformat",
    "list_alerts",
    "list_runs",
    "per_source_status",
    "pipeline_status",
    "rate",
    "scraping_health",
    "with_floor",
    "worst",
]
