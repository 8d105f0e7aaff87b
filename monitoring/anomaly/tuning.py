"""Replay of the stored history through the detector at several sensitivities (``manage.py tune_anomalies``).

Each source's closed hours of the last ``days`` days (plus the training days before them, which only
teach) are fed to a fresh detector per sensitivity, as the live selector would have fed them hour
by hour. Findings are grouped into episodes (findings on one source with no gap longer than
:data:`EPISODE_GAP_HOURS`), the unit an operator is paged for. An episode *matches operators* when it
overlaps an alert on the same source (of any rule) that an operator acknowledged or resolved: a
sensitivity whose episodes mostly match is finding what operators act on; one with many unmatched
episodes per week is noisy. Only closed hours are replayed: the stored history has no record of how
an hour filled up, so the live judgement of the current hour (which finds outages within the hour)
is not part of the replay.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from monitoring.anomaly.contract import Finding
from monitoring.anomaly.series import (
    DEFAULT_TIME_ZONE,
    hourly_series,
    source_time_zones,
    training_days_setting,
)
from monitoring.anomaly.streaming import make_detector
from monitoring.models import Alert
from monitoring.windows import HOUR, floor_hour, window_sums

DEFAULT_SENSITIVITIES = (3.0, 4.0, 5.0, 6.0)
EPISODE_GAP_HOURS = 3
MAX_DAYS = 366


@dataclass(frozen=True)
class Episode:
    source: str
    start: datetime
    end: datetime  # end of the last flagged hour
    findings: int
    metrics: tuple[str, ...]


def episodes(*, source: str, findings: Iterable[Finding]) -> list[Episode]:
    """Findings of one source grouped into episodes (sorted by hour)."""
    grouped: list[list[Finding]] = []
    for finding in sorted(findings, key=lambda f: f.hour):
        if grouped and finding.hour - grouped[-1][-1].hour <= timedelta(hours=EPISODE_GAP_HOURS):
            grouped[-1].append(finding)
        else:
            grouped.append([finding])
    return [
        Episode(
            source=source,
            start=group[0].hour,
            end=group[-1].hour + HOUR,
            findings=len(group),
            metrics=tuple(sorted({f.metric for f in group})),
        )
        for group in grouped
    ]


def _operator_alerts(*, since: datetime, source: str | None) -> dict[str, list[tuple[datetime, datetime, str]]]:
    """Per source, the alerts operators acknowledged or resolved: (from, to, how)."""
    alerts = Alert.objects.filter(last_seen__gte=since).exclude(source="")
    alerts = alerts.filter(acknowledged_by__isnull=False) | alerts.filter(resolved_by__isnull=False)
    if source is not None:
        alerts = alerts.filter(source=source)
    found: dict[str, list[tuple[datetime, datetime, str]]] = {}
    for alert in alerts:
        how = "resolved" if alert.resolved_by_id else "acknowledged"
        until = max(alert.last_seen, alert.resolved_at or alert.last_seen)
        found.setdefault(alert.source, []).append((alert.first_seen, until, how))
    return found


def tune(
    *, now: datetime, days: int = 30, source: str | None = None, sensitivities: Iterable[float] = DEFAULT_SENSITIVITIES
) -> dict[str, Any]:
    """Per sensitivity and source: episodes, episodes per week, and those that match operators' alerts."""
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be within 1..{MAX_DAYS}")
    sensitivities = tuple(sorted(set(sensitivities)))
    if not sensitivities or any(s <= 0 for s in sensitivities):
        raise ValueError("sensitivities must be positive")
    last = floor_hour(now) - HOUR
    judged_from = last + HOUR - timedelta(days=days)
    warm_up = training_days_setting()
    rows = window_sums(start=judged_from - timedelta(days=warm_up), end=last + HOUR, source=source, per_hour=True)
    if source is not None and not rows:
        raise LookupError(f"no stored hours for source {source!r} in the last {days + warm_up} days")
    per_source: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        per_source.setdefault(row["source"], []).append(row)
    time_zones = source_time_zones()
    alerts = _operator_alerts(since=judged_from, source=source)
    weeks = days / 7
    results = []
    for sensitivity in sensitivities:
        by_source = []
        for name, source_rows in sorted(per_source.items()):
            detector = make_detector(tz=time_zones.get(name, DEFAULT_TIME_ZONE), sensitivity=sensitivity)
            found: list[Finding] = []
            for counts in hourly_series(rows=source_rows, last=last):
                findings = detector.observe(counts)
                if counts.hour >= judged_from:
                    found.extend(findings)
            source_episodes = episodes(source=name, findings=found)
            matched = {"acknowledged": 0, "resolved": 0}
            for episode in source_episodes:
                hows = {h for a, b, h in alerts.get(name, []) if a < episode.end and b >= episode.start}
                if "resolved" in hows:
                    matched["resolved"] += 1
                elif hows:
                    matched["acknowledged"] += 1
            by_source.append(
                {
                    "source": name,
                    "episodes": len(source_episodes),
                    "per_week": round(len(source_episodes) / weeks, 2),
                    "findings": sum(e.findings for e in source_episodes),
                    "matched_resolved": matched["resolved"],
                    "matched_acknowledged": matched["acknowledged"],
                    "unmatched": len(source_episodes) - matched["resolved"] - matched["acknowledged"],
                }
            )
        results.append({"sensitivity": sensitivity, "sources": by_source})
    return {"from": judged_from, "to": last + HOUR, "days": days, "results": results}
