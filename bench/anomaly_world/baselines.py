"""Comparison detectors behind the same Protocol: a plain z-score and the pre-rewrite robust detector.

The issue requires a new detector to beat the z-score on every shape; the robust adapter shows how
much the rewrite gains over the detector it replaces. Both judge closed hours only (``judge_partial``
returns nothing): neither method has a notion of a partial hour.
"""

from __future__ import annotations

import math
from collections import deque
from datetime import datetime

from bench.anomaly_world.labels import DROP, GEOCODING, METRICS, SPIKE, VALIDATION, VOLUME
from monitoring.anomaly.contract import LEARNING, READY, Finding, Readiness

ZSCORE_THRESHOLD = 3.0
ZSCORE_WINDOW_HOURS = 14 * 24
ZSCORE_MIN_POINTS = 72  # three days before the first judgement
MIN_RATE_ATTEMPTS = 30


def _value(metric: str, counts: object) -> tuple[float | None, int]:
    """(value, sample size) of one metric for one hour; rates in percent, None when undefined."""
    if metric == VOLUME:
        return float(counts.geocoding_attempts), counts.geocoding_attempts
    if metric == GEOCODING:
        num, den = counts.geocoding_successes, counts.geocoding_attempts
    else:
        num, den = counts.validation_passes, counts.validation_attempts
    return (100.0 * num / den if den else None), den


class ZScoreDetector:
    """Mean and standard deviation of the previous 14 days of the same metric; |z| ≥ 3 is an anomaly.

    No seasonality, no robustness: the textbook baseline. Rates are judged (and learnt) only on hours
    with at least 30 attempts.
    """

    def __init__(self, *, tz: str = "UTC", sensitivity: float = ZSCORE_THRESHOLD) -> None:
        self.tz = tz
        self.threshold = sensitivity
        self.windows: dict[str, deque[tuple[int, float]]] = {m: deque() for m in METRICS}
        self.sums = dict.fromkeys(METRICS, 0.0)
        self.squares = dict.fromkeys(METRICS, 0.0)
        self.seen = 0

    def judge_partial(self, counts: object, *, fraction: float) -> list[Finding]:
        return []

    def readiness(self) -> Readiness:
        ready = all(len(w) >= ZSCORE_MIN_POINTS for w in self.windows.values())
        return Readiness(state=READY if ready else LEARNING, hours_seen=self.seen, hours_needed=ZSCORE_MIN_POINTS)

    def observe(self, counts: object) -> list[Finding]:
        findings = []
        index = self.seen
        self.seen += 1
        for metric in METRICS:
            value, size = _value(metric, counts)
            window = self.windows[metric]
            while window and window[0][0] <= index - ZSCORE_WINDOW_HOURS:
                _, old = window.popleft()
                self.sums[metric] -= old
                self.squares[metric] -= old * old
            if value is None or (metric != VOLUME and size < MIN_RATE_ATTEMPTS):
                continue
            n = len(window)
            if n >= ZSCORE_MIN_POINTS:
                mean = self.sums[metric] / n
                sd = math.sqrt(max(self.squares[metric] / n - mean * mean, 0.0) * n / (n - 1))
                if sd > 0:
                    z = (value - mean) / sd
                    if abs(z) >= self.threshold:
                        findings.append(_finding(metric, counts.hour, value, mean, sd * self.threshold, z, "zscore"))
            window.append((index, value))
            self.sums[metric] += value
            self.squares[metric] += value * value
        return findings


def _finding(
    metric: str, hour: datetime, value: float, expected: float, margin: float, score: float, rule: str
) -> Finding:
    return Finding(
        metric=metric,
        hour=hour,
        fraction=1.0,
        direction=DROP if score < 0 else SPIKE,
        observed=round(value, 2),
        expected=round(expected, 2),
        expected_low=round(expected - margin, 2),
        expected_high=round(expected + margin, 2),
        score=round(score, 2),
        rule=rule,
        explanation=f"{metric} {value:.1f} against {expected:.1f} ({score:+.1f} σ)",
    )


def make_zscore(*, tz: str = "UTC", sensitivity: float = ZSCORE_THRESHOLD) -> ZScoreDetector:
    return ZScoreDetector(tz=tz, sensitivity=sensitivity)


class OldRobustDetector:
    """Adapter over the pre-rewrite pure functions ``robust_estimate``/``detect`` of detector.py.

    Walk-forward as the old evaluation did: each closed hour judged against the 14 whole UTC days
    before it (plus the day so far). Import fails with ImportError once those functions are gone.
    """

    training_days = 14

    def __init__(self, *, tz: str = "UTC", sensitivity: float | None = None) -> None:
        from dataclasses import replace

        from monitoring.anomaly import detector as old

        for name in ("robust_estimate", "detect", "points", "training_window", "DetectorConfig"):
            if not hasattr(old, name):
                raise ImportError(f"monitoring.anomaly.detector.{name} is gone")
        self.old = old
        self.tz = tz
        config = old.DetectorConfig()
        self.config = config if sensitivity is None else replace(config, sensitivity=sensitivity)
        self.history: dict[str, list[object]] = {m: [] for m in METRICS}

    def judge_partial(self, counts: object, *, fraction: float) -> list[Finding]:
        return []

    def readiness(self) -> Readiness:
        seen = len(self.history[VOLUME])
        needed = self.config.min_training_points
        return Readiness(state=READY if seen >= needed else LEARNING, hours_seen=seen, hours_needed=needed)

    def observe(self, counts: object) -> list[Finding]:
        findings = []
        window = self.old.training_window(hour=counts.hour, training_days=self.training_days)
        for metric in METRICS:
            point = self.old.points(metric=metric, counts=[counts])[0]
            history = self.history[metric]
            anomaly = self.old.detect(
                source="", metric=metric, history=history[-window:], current=point, config=self.config
            )
            history.append(point)
            if len(history) > 2 * window:
                del history[: len(history) - window]
            if anomaly is not None:
                findings.append(
                    Finding(
                        metric=metric,
                        hour=counts.hour,
                        fraction=1.0,
                        direction=anomaly.direction,
                        observed=float(anomaly.observed),
                        expected=anomaly.expected,
                        expected_low=anomaly.expected_low,
                        expected_high=anomaly.expected_high,
                        score=anomaly.score,
                        rule="robust-old",
                        explanation=f"{metric} {anomaly.observed} against {anomaly.expected}",
                    )
                )
        return findings


def make_old_robust(*, tz: str = "UTC", sensitivity: float | None = None) -> OldRobustDetector:
    return OldRobustDetector(tz=tz, sensitivity=sensitivity)


def old_robust_available() -> bool:
    try:
        make_old_robust()
    except ImportError:
        return False
    return True


__all__ = ["VALIDATION", "ZScoreDetector", "OldRobustDetector", "make_zscore", "make_old_robust"]
