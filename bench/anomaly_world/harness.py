"""Drives one detector over one source's hours through the Protocol of ``monitoring/anomaly/contract.py``.

Per UTC hour, in order: ``judge_partial`` with the first one, two and three quarter-hours (fraction
0.25, 0.5, 0.75: what had arrived by then), then ``observe`` with the closed hour. Only the Protocol is
used, so the judge sees what the live service would see and nothing of the detector's insides. The
detected-at time is the moment of the call (judged hour + fraction), whatever hour a finding names.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bench.anomaly_world.scoring import Detection
from bench.anomaly_world.sources import QUARTERS
from bench.anomaly_world.world import Quarter, hour_totals

try:  # the contract names HourCounts through detector.py; follow it if it moves
    from monitoring.anomaly.contract import HourCounts
except ImportError:  # pragma: no cover
    from monitoring.anomaly.detector import HourCounts

PARTIALS = tuple(q / QUARTERS for q in range(1, QUARTERS))  # 0.25, 0.5, 0.75


@dataclass(frozen=True, kw_only=True)
class Run:
    detections: list[Detection]
    seconds: float
    calls: int
    readiness: str | None


def _counts(hour: datetime, totals: Quarter) -> HourCounts:
    ga, gs, va, vp = totals
    return HourCounts(
        hour=hour, geocoding_attempts=ga, geocoding_successes=gs, validation_attempts=va, validation_passes=vp
    )


def run_source(
    *,
    factory: Callable[..., object],
    tz: str,
    source: str,
    start: datetime,
    counts: list[list[Quarter]],
    sensitivity: float | None = None,
    partial: bool = True,
) -> Run:
    """Every finding of a fresh detector over ``counts`` (one entry per hour, four quarters each)."""
    began = time.perf_counter()
    detector = factory(tz=tz) if sensitivity is None else factory(tz=tz, sensitivity=sensitivity)
    detections: list[Detection] = []
    calls = 0
    for index, quarters in enumerate(counts):
        hour = start + timedelta(hours=index)
        if partial:
            for upto, fraction in enumerate(PARTIALS, start=1):
                calls += 1
                for f in detector.judge_partial(_counts(hour, hour_totals(quarters, upto)), fraction=fraction):
                    detections.append(_detection(source, hour, fraction, f))
        calls += 1
        for f in detector.observe(_counts(hour, hour_totals(quarters))):
            detections.append(_detection(source, hour, 1.0, f))
    readiness = getattr(detector.readiness(), "state", None)
    return Run(detections=detections, seconds=time.perf_counter() - began, calls=calls, readiness=readiness)


def _detection(source: str, hour: datetime, fraction: float, finding: object) -> Detection:
    return Detection(
        source=source,
        metric=finding.metric,
        hour=finding.hour,
        fraction=fraction,
        direction=finding.direction,
        detected_at=hour + timedelta(hours=fraction),
    )
