"""Anomalies of the last complete hour(s) per source, from the hourly sums of the one window computation.

Meant for the status document's ``anomalies`` list. Settings, read from ``django.conf.settings`` at
call time (absent ones take the default):

- ``MONITORING_ANOMALY_SENSITIVITY`` (4.0): flag when |score| ≥ this many spreads;
- ``MONITORING_ANOMALY_TRAINING_DAYS`` (14): hours of history that train each judged hour;
- ``MONITORING_ANOMALY_MIN_ATTEMPTS`` (30): fewer attempts in an hour and its rates are not judged
  (and do not train the rate baselines).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings

from monitoring.anomaly.detector import METRICS, DetectorConfig, HourCounts, detect, points, training_window
from monitoring.models.metrics import COUNT_FIELDS
from monitoring.windows import HOUR, floor_hour, window_sums

DEFAULT_SENSITIVITY = 4.0
DEFAULT_TRAINING_DAYS = 14
DEFAULT_MIN_ATTEMPTS = 30


def detector_config(*, sensitivity: float | None = None) -> DetectorConfig:
    """The detector configuration from settings; ``sensitivity`` overrides the setting."""
    if sensitivity is None:
        sensitivity = float(getattr(settings, "MONITORING_ANOMALY_SENSITIVITY", DEFAULT_SENSITIVITY))
    if sensitivity <= 0:
        raise ValueError("sensitivity must be positive")
    min_attempts = int(getattr(settings, "MONITORING_ANOMALY_MIN_ATTEMPTS", DEFAULT_MIN_ATTEMPTS))
    return DetectorConfig(sensitivity=sensitivity, min_attempts=min_attempts)


def training_days_setting() -> int:
    return int(getattr(settings, "MONITORING_ANOMALY_TRAINING_DAYS", DEFAULT_TRAINING_DAYS))


def _hourly_counts(*, rows: Sequence[dict[str, Any]], last: datetime) -> list[HourCounts]:
    """One entry per hour from the source's first row to ``last``; a missing hour holds zeros.

    Hours before the first row are left out rather than zeroed: a source added last week has no
    history there, and zeros would make its first normal day look like a spike.
    """
    by_hour = {floor_hour(row["hour"]): row for row in rows}
    hour, counts = min(by_hour), []
    while hour <= last:
        row = by_hour.get(hour)
        counts.append(HourCounts(hour=hour, **{f: row[f] for f in COUNT_FIELDS}) if row else HourCounts(hour=hour))
        hour += HOUR
    return counts


def recent_anomalies(
    *, now: datetime, sensitivity: float | None = None, training_days: int | None = None, hours: int = 1
) -> list[dict[str, Any]]:
    """Anomalies in the last ``hours`` complete UTC hours before ``now``, per source and metric.

    Each hour is judged by the robust detector against the ``training_days`` before it. Reads the
    hourly sums in one query (:func:`monitoring.windows.window_sums`). Sorted by hour, source and metric;
    each entry has ``source``, ``metric``
    (``volume``, ``geocoding_success_rate``, ``validation_pass_rate``), ``hour`` (ISO-8601 UTC start),
    ``observed``, ``expected``, ``expected_low``, ``expected_high``, ``score`` and ``direction``
    (``drop`` / ``spike``).
    """
    config = detector_config(sensitivity=sensitivity)
    training_days = training_days_setting() if training_days is None else training_days
    if training_days < 1:
        raise ValueError("training_days must be at least 1")
    if hours < 1:
        raise ValueError("hours must be at least 1")
    # The hour that contains ``now`` is still filling up: judging it would flag every partial hour.
    last = floor_hour(now) - HOUR
    first_judged = last - (hours - 1) * HOUR
    since = first_judged.replace(hour=0) - timedelta(days=training_days)
    rows = window_sums(start=since, end=last + HOUR, per_hour=True)
    per_source: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        per_source.setdefault(row["source"], []).append(row)

    found = []
    for source, source_rows in per_source.items():
        counts = _hourly_counts(rows=source_rows, last=last)
        judged = [i for i, c in enumerate(counts) if c.hour >= first_judged]
        for metric in METRICS:
            series = points(metric=metric, counts=counts)
            for i in judged:
                anomaly = detect(
                    source=source,
                    metric=metric,
                    history=series[max(0, i - training_window(hour=counts[i].hour, training_days=training_days)) : i],
                    current=series[i],
                    config=config,
                )
                if anomaly is not None:
                    found.append(anomaly)
    found.sort(key=lambda a: (a.hour, a.source, a.metric))
    return [a.as_dict() for a in found]
