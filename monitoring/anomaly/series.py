"""Live anomaly findings: one streaming detector per source, fed from the hourly sums, asked about now.

Each source's detector (:func:`monitoring.anomaly.streaming.make_detector`, in the source's time zone
from :class:`monitoring.models.SourceSettings`) is fed every closed UTC hour of the training history
(:func:`monitoring.windows.window_sums`, one query for all sources), then asked about the current hour
so far (``judge_partial``, one more query). Feeding is the expensive part (60-70 ms of CPU per source for
14 days, bench/results/anomaly_tick.md), so the fed detectors are kept in this process: when the hour
turns, each is fed the one new
closed hour as it stands then; they are rebuilt from the history when the process starts, when the
settings or the time zones change, and when more than one hour passed since the last call. Reports
that arrive for an hour after it was fed reach the detector only at the next rebuild: a late batch
looks like a short hour followed by a long one, which the detector is built to tolerate.

Settings, read from ``django.conf.settings`` at call time (absent ones take the default):

- ``MONITORING_ANOMALY_SENSITIVITY`` (4.5): spreads from expected before a window is abnormal;
- ``MONITORING_ANOMALY_TRAINING_DAYS`` (14): days of hourly history a detector is built from.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings

from monitoring.anomaly.contract import LEARNING, STARTING, Detector, Finding
from monitoring.anomaly.detector import HourCounts
from monitoring.anomaly.streaming import DEFAULT_SENSITIVITY, StreamingConfig, make_detector
from monitoring.models import SourceSettings
from monitoring.models.metrics import COUNT_FIELDS
from monitoring.windows import HOUR, floor_hour, window_sums

DEFAULT_TRAINING_DAYS = 14
DEFAULT_TIME_ZONE = "UTC"


def sensitivity_setting(sensitivity: float | None = None) -> float:
    """The sensitivity from settings; ``sensitivity`` overrides the setting."""
    if sensitivity is None:
        sensitivity = float(getattr(settings, "MONITORING_ANOMALY_SENSITIVITY", DEFAULT_SENSITIVITY))
    if sensitivity <= 0:
        raise ValueError("sensitivity must be positive")
    return sensitivity


def training_days_setting() -> int:
    days = int(getattr(settings, "MONITORING_ANOMALY_TRAINING_DAYS", DEFAULT_TRAINING_DAYS))
    if days < 1:
        raise ValueError("training_days must be at least 1")
    return days


def source_time_zones() -> dict[str, str]:
    """Each configured source's IANA time zone (a source without settings follows UTC)."""
    return dict(SourceSettings.objects.values_list("source", "timezone"))


def hour_counts(row: dict[str, Any]) -> HourCounts:
    return HourCounts(hour=row["hour"], **{f: row[f] for f in COUNT_FIELDS})


def hourly_series(*, rows: Sequence[dict[str, Any]], last: datetime) -> list[HourCounts]:
    """One entry per hour from the source's first row to ``last``; a missing hour holds zeros.

    Hours before the first row are left out rather than zeroed: a source added last week has no
    history there, and zeros would make its first normal day look like a spike.
    """
    by_hour = {floor_hour(row["hour"]): row for row in rows}
    if not by_hour:
        return []
    hour, series = min(by_hour), []
    while hour <= last:
        row = by_hour.get(hour)
        series.append(hour_counts(row) if row else HourCounts(hour=hour))
        hour += HOUR
    return series


@dataclass
class FedDetector:
    """A source's detector, fed up to ``last_closed``, with the findings of that last closed hour."""

    detector: Detector
    time_zone: str
    last_closed: datetime
    findings: list[Finding] = field(default_factory=list)


def feed(
    *,
    histories: dict[str, list[HourCounts]],
    time_zones: dict[str, str],
    sensitivity: float,
    factory: Callable[..., Detector] = make_detector,
) -> dict[str, FedDetector]:
    """A detector per source, fed its whole series in order (the last hour's findings kept)."""
    fed = {}
    for source, series in histories.items():
        if not series:
            continue
        tz = time_zones.get(source, DEFAULT_TIME_ZONE)
        detector = factory(tz=tz, sensitivity=sensitivity)
        findings: list[Finding] = []
        for counts in series:
            findings = detector.observe(counts)
        fed[source] = FedDetector(detector=detector, time_zone=tz, last_closed=series[-1].hour, findings=findings)
    return fed


@dataclass
class _Pool:
    key: tuple[Any, ...] | None = None
    last_closed: datetime | None = None  # the last closed hour fed
    detectors: dict[str, FedDetector] = field(default_factory=dict)


_pool = _Pool()
_lock = threading.Lock()


def reset_detectors() -> None:
    """Forget the fed detectors of this process (tests; a changed database)."""
    with _lock:
        _pool.key, _pool.last_closed, _pool.detectors = None, None, {}


def _rows_by_source(rows: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row["source"], []).append(row)
    return grouped


def fed_detectors(*, now: datetime, sensitivity: float | None = None) -> dict[str, FedDetector]:
    """The per-source detectors fed up to the last closed hour before ``now`` (kept in this process)."""
    sensitivity = sensitivity_setting(sensitivity)
    days = training_days_setting()
    last_closed = floor_hour(now) - HOUR
    with _lock:
        pool = _pool
        # Within the hour nothing is read: a changed time zone takes effect when the hour turns.
        if pool.key is not None and pool.key[:2] == (sensitivity, days) and pool.last_closed == last_closed:
            return dict(pool.detectors)
        time_zones = source_time_zones()
        key = (sensitivity, days, tuple(sorted(time_zones.items())))
        if pool.key == key and pool.last_closed == last_closed - HOUR:
            _feed_one_hour(pool, hour=last_closed, time_zones=time_zones, sensitivity=sensitivity)
            pool.last_closed = last_closed
            return dict(pool.detectors)
        start = last_closed.replace(hour=0) - timedelta(days=days)
        rows = window_sums(start=start, end=last_closed + HOUR, per_hour=True)
        histories = {
            source: hourly_series(rows=source_rows, last=last_closed)
            for source, source_rows in _rows_by_source(rows).items()
        }
        pool.detectors = feed(histories=histories, time_zones=time_zones, sensitivity=sensitivity)
        pool.key, pool.last_closed = key, last_closed
        return dict(pool.detectors)


def _feed_one_hour(pool: _Pool, *, hour: datetime, time_zones: dict[str, str], sensitivity: float) -> None:
    rows = {row["source"]: row for row in window_sums(start=hour, end=hour + HOUR, per_hour=True)}
    for source, fed in pool.detectors.items():
        row = rows.get(source)
        fed.findings = fed.detector.observe(hour_counts(row) if row else HourCounts(hour=hour))
        fed.last_closed = hour
    # A source whose first reports arrived in this hour gets a detector with that one hour.
    for source, row in rows.items():
        if source not in pool.detectors:
            pool.detectors.update(
                feed(histories={source: [hour_counts(row)]}, time_zones=time_zones, sensitivity=sensitivity)
            )


def _as_dict(source: str, finding: Finding) -> dict[str, Any]:
    document = finding.as_dict()
    document["hour"] = document["hour"].replace("+00:00", "Z")
    if finding.metric == "volume":
        document["observed"] = int(finding.observed)
    document.pop("fraction")
    return {"source": source, **document}


def live_anomalies(*, now: datetime, sensitivity: float | None = None) -> dict[str, Any]:
    """The findings for the last closed hour and the current hour so far, and each source's readiness.

    ``findings``: sorted by hour, source and metric; each has ``source``, ``metric`` (``volume``,
    ``geocoding_success_rate``, ``validation_pass_rate``), ``hour`` (ISO-8601 UTC start), ``observed``,
    ``expected``, ``expected_low``, ``expected_high``, ``score``, ``direction`` (``drop``/``spike``),
    ``rule``, ``explanation`` and ``partial`` (true for the hour still filling up).
    ``readiness``: per source, ``state`` (``learning``/``ready``), ``hours_seen``, ``hours_needed``.
    """
    detectors = fed_detectors(now=now, sensitivity=sensitivity)
    current = floor_hour(now)
    fraction = (now - current) / HOUR
    # From the hour before: window_sums then reads the current hour from its rollup (kept by the
    # triggers) rather than from the raw metrics, which is the cheap path.
    rows = window_sums(start=current - HOUR, end=now, per_hour=True) if fraction else []
    partial = {row["source"]: row for row in rows if row["hour"] == current}
    found = []
    readiness = {}
    for source, fed in sorted(detectors.items()):
        found.extend(_as_dict(source, f) for f in fed.findings)
        if fraction:
            row = partial.get(source)
            counts = hour_counts({**row, "hour": current}) if row else HourCounts(hour=current)
            found.extend(_as_dict(source, f) for f in fed.detector.judge_partial(counts, fraction=fraction))
        state = fed.detector.readiness()
        readiness[source] = {"state": state.state, "hours_seen": state.hours_seen, "hours_needed": state.hours_needed}
    found.sort(key=lambda f: (f["hour"], f["source"], f["metric"]))
    return {"findings": found, "readiness": readiness}


def not_started() -> dict[str, Any]:
    """The readiness of a source without a closed hour yet (its first reports are in this hour)."""
    return {"state": LEARNING, "hours_seen": 0, "hours_needed": StreamingConfig().hours_needed}


def starting() -> dict[str, Any]:
    """The readiness of every source before this process has judged once (its detectors are being built)."""
    return {"state": STARTING, "hours_seen": 0, "hours_needed": StreamingConfig().hours_needed}


def recent_anomalies(*, now: datetime, sensitivity: float | None = None) -> list[dict[str, Any]]:
    """The findings of :func:`live_anomalies` alone."""
    return live_anomalies(now=now, sensitivity=sensitivity)["findings"]
