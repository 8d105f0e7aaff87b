"""Event-level scoring of a detector's findings against labelled incidents, with an hour-level view.

Definitions (also in ``bench/anomaly_world/README.md``):

- an event is *found* when a detection on one of its metrics, in its direction, is made between its
  start and its end plus :data:`GRACE` (two hours: an outage at 23:50 is only knowable after it);
  time to detect = detected-at − start, detected-at = the judged hour + fraction × 1 h;
- a detection on an event's metric inside that window but in the other direction (the recovery of a
  step, the catch-up after a gap) is neither credit nor a false alarm;
- every other detection is a false alarm; the false alarms of one source in consecutive hours (any
  metric) form one *false-alarm run*, the unit a person is paged for;
- precision = found / (found + false-alarm runs), recall = found / events;
- hour level: a labelled hour is (source, metric, hour) overlapping an event; a flagged hour is
  (source, metric, judged hour, direction) of any detection; precision = flagged hours that are
  labelled in that direction / flagged hours, recall = labelled hours flagged in their direction /
  labelled hours.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bench.anomaly_world.labels import Event

GRACE = timedelta(hours=2)
_HOUR = timedelta(hours=1)


@dataclass(frozen=True, kw_only=True)
class Detection:
    """One finding as the harness saw it: ``hour`` is the judged hour, ``detected_at`` when it was said."""

    source: str
    metric: str
    hour: datetime
    fraction: float
    direction: str
    detected_at: datetime


def percentile(values: Sequence[float], share: float) -> float | None:
    """Nearest-rank percentile (``share`` in 0..1); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(math.ceil(share * len(ordered)), 1)
    return ordered[rank - 1]


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _hours_touched(event: Event) -> Iterable[datetime]:
    hour = event.start.replace(minute=0, second=0, microsecond=0)
    while hour < event.end:
        yield hour
        hour += _HOUR


def false_alarm_runs(hours_by_source: dict[str, set[datetime]]) -> int:
    """Consecutive false-alarm hours of one source count as one run."""
    runs = 0
    for hours in hours_by_source.values():
        previous = None
        for hour in sorted(hours):
            if previous is None or hour - previous > _HOUR:
                runs += 1
            previous = hour
    return runs


def _time_to_detect(hours: list[float]) -> dict[str, float | None]:
    return {
        "ttd_median_h": round(statistics.median(hours), 2) if hours else None,
        "ttd_p90_h": round(percentile(hours, 0.9), 2) if hours else None,
    }


def score(
    *,
    events: Sequence[Event],
    detections: Sequence[Detection],
    sources: int,
    days: float,
    grace: timedelta = GRACE,
) -> dict[str, object]:
    """Event- and hour-level scores of ``detections`` (all sources of one data set) against ``events``."""
    by_source: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        by_source[event.source].append(event)
    first_detection: dict[int, datetime] = {}
    false_hours: dict[str, set[datetime]] = defaultdict(set)
    for d in detections:
        matched = neutral = False
        for event in by_source.get(d.source, ()):
            if d.metric not in event.metrics or not (event.start <= d.detected_at <= event.end + grace):
                continue
            if d.direction == event.direction:
                matched = True
                if event.id not in first_detection or d.detected_at < first_detection[event.id]:
                    first_detection[event.id] = d.detected_at
            else:
                neutral = True
        if not matched and not neutral:
            false_hours[d.source].add(d.detected_at.replace(minute=0, second=0, microsecond=0))
    runs = false_alarm_runs(false_hours)
    found = len(first_detection)
    delays = {e.id: (first_detection[e.id] - e.start).total_seconds() / 3600 for e in events if e.id in first_detection}
    per_kind: dict[str, dict[str, object]] = {}
    for kind in sorted({e.kind for e in events}):
        of_kind = [e for e in events if e.kind == kind]
        hit = [delays[e.id] for e in of_kind if e.id in delays]
        per_kind[kind] = {
            "events": len(of_kind),
            "found": len(hit),
            "recall": _ratio(len(hit), len(of_kind)),
            **_time_to_detect(hit),
        }
    source_weeks = sources * days / 7.0
    return {
        "events": len(events),
        "found": found,
        "false_alarm_runs": runs,
        "false_alarm_hours": sum(len(h) for h in false_hours.values()),
        "precision": _ratio(found, found + runs),
        "recall": _ratio(found, len(events)),
        "false_alarm_runs_per_source_week": round(runs / source_weeks, 4) if source_weeks else None,
        **_time_to_detect(list(delays.values())),
        "per_kind": per_kind,
        "hour_level": hour_level(events=events, detections=detections),
        "missed": sorted(e.id for e in events if e.id not in first_detection),
    }


def hour_level(*, events: Sequence[Event], detections: Sequence[Detection]) -> dict[str, object]:
    labelled: dict[tuple[str, str, datetime], str] = {}
    for event in events:
        for metric in event.metrics:
            for hour in _hours_touched(event):
                labelled[(event.source, metric, hour)] = event.direction
    flagged = {(d.source, d.metric, d.hour, d.direction) for d in detections}
    true_flags = {f for f in flagged if labelled.get(f[:3]) == f[3]}
    hit_labels = {f[:3] for f in true_flags}
    return {
        "labelled_hours": len(labelled),
        "flagged_hours": len(flagged),
        "true_flagged_hours": len(true_flags),
        "precision": _ratio(len(true_flags), len(flagged)),
        "recall": _ratio(len(hit_labels), len(labelled)),
    }
