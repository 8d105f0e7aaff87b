"""Anomaly detectors for hourly per-source series: a robust seasonal baseline and a plain z-score.

Pure functions over in-memory points (no Django, no database), so the live selector, the synthetic
evaluation and the tests run the same code. Method and measured precision/recall:
``docs/anomaly-detection.md``.

A series is a list of :class:`Point`, one per hour, with UTC datetimes (hour of day and weekday are
read from them). The robust detector predicts an hour from the training hours before it:

- expected = median of the training values at the same hour of day, times (volume) or plus (rates)
  the median deviation of the same weekday from that daily profile;
- spread = 1.4826 × MAD of the training residuals at the same hour of day ±2 h, floored by the noise
  the sample alone implies (Poisson for volume, binomial for rates) and a small relative/absolute floor;
- score = (observed − expected) / spread, volume on the Anscombe scale (see :class:`Estimate`);
  an anomaly when |score| ≥ sensitivity.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

VOLUME = "volume"
GEOCODING_SUCCESS_RATE = "geocoding_success_rate"
VALIDATION_PASS_RATE = "validation_pass_rate"  # noqa: S105 (a metric name, not a password)
METRICS = (VOLUME, GEOCODING_SUCCESS_RATE, VALIDATION_PASS_RATE)
RATE_METRICS = (GEOCODING_SUCCESS_RATE, VALIDATION_PASS_RATE)

DROP = "drop"
SPIKE = "spike"

ZSCORE_THRESHOLD = 3.0
# 1.4826 × MAD estimates the standard deviation of normally distributed noise.
MAD_TO_SD = 1.4826
_HOURS_PER_DAY = 24
_DAYS_PER_WEEK = 7


@dataclass(frozen=True, kw_only=True)
class HourCounts:
    """One source's sums for one UTC hour, as kept in ``HourlyRollup``."""

    hour: datetime
    geocoding_attempts: int = 0
    geocoding_successes: int = 0
    validation_attempts: int = 0
    validation_passes: int = 0


@dataclass(frozen=True, kw_only=True)
class Point:
    """One hour of one metric: ``value`` is None when undefined (a rate without attempts).

    ``attempts`` is the sample behind the value: the denominator of a rate, the count itself for volume.
    """

    hour: datetime
    value: float | None
    attempts: int


@dataclass(frozen=True, kw_only=True)
class DetectorConfig:
    sensitivity: float = 4.0
    # Hours with fewer attempts neither get a rate anomaly nor train a rate baseline: binomial noise
    # at n=30, p=0.9 is already ±5.5 points.
    min_attempts: int = 30
    # Cold start: fewer usable training hours than this (3 days) and the hour is not judged.
    min_training_points: int = 72
    # An hour-of-day (weekday) with fewer usable points falls back to the whole training window.
    min_same_hour_points: int = 5
    weekly: bool = True
    # The spread pools the residuals of the judged hour of day and this many hours either side.
    spread_hours: int = 2
    # Spread floors: a flat or perfectly regular series must not turn a small wobble into a huge
    # score. Volume: at least Poisson noise and this relative noise; rates: at least binomial noise
    # and this many points.
    volume_relative_floor: float = 0.05
    rate_floor: float = 1.0


@dataclass(frozen=True, kw_only=True)
class Estimate:
    """Observed and expected in the metric's units; ``spread`` on the scale the score is computed on.

    Volume is scored on the Anscombe scale 2·sqrt(x + 3/8), where Poisson counts have unit variance
    whatever their level: a quiet night hour and a busy afternoon share one noise yardstick, a drop to
    zero weighs more than the same step between two large counts, and expected ranges come out
    asymmetric (a count cannot go below zero, it can triple).
    """

    observed: float
    expected: float
    spread: float
    counts: bool = False

    @property
    def score(self) -> float:
        if self.counts:
            return (anscombe(self.observed) - anscombe(self.expected)) / self.spread
        return (self.observed - self.expected) / self.spread

    def bounds(self, threshold: float) -> tuple[float, float]:
        """The range of observations that score below ``threshold``."""
        margin = threshold * self.spread
        if self.counts:
            centre = anscombe(self.expected)
            return inverse_anscombe(centre - margin), inverse_anscombe(centre + margin)
        return self.expected - margin, self.expected + margin


def anscombe(count: float) -> float:
    return 2.0 * math.sqrt(max(count, 0.0) + 0.375)


def inverse_anscombe(value: float) -> float:
    return max((value / 2.0) ** 2 - 0.375, 0.0)


@dataclass(frozen=True, kw_only=True)
class Anomaly:
    source: str
    metric: str
    hour: str
    observed: float
    expected: float
    expected_low: float
    expected_high: float
    score: float
    direction: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def training_window(*, hour: datetime, training_days: int) -> int:
    """How many hours before ``hour`` train it: ``training_days`` whole UTC days plus ``hour``'s day so far.

    Whole days give every weekday the same number of complete occurrences; a sliding 336-hour window
    would cut the oldest occurrence of the judged weekday down to a few hours.
    """
    return training_days * _HOURS_PER_DAY + hour.hour


def volume_value(counts: HourCounts) -> int:
    """Records that entered the pipeline in the hour: every scraped record is sent to the geocoder.

    ``reports`` (batches) is not used: it counts how a client chunks its uploads, not what it scraped.
    """
    return counts.geocoding_attempts


def points(*, metric: str, counts: Sequence[HourCounts]) -> list[Point]:
    """The hourly series of one metric from per-hour sums (rates in percent)."""
    if metric == VOLUME:
        return [Point(hour=c.hour, value=float(volume_value(c)), attempts=volume_value(c)) for c in counts]
    if metric == GEOCODING_SUCCESS_RATE:
        pairs = [(c.hour, c.geocoding_successes, c.geocoding_attempts) for c in counts]
    elif metric == VALIDATION_PASS_RATE:
        pairs = [(c.hour, c.validation_passes, c.validation_attempts) for c in counts]
    else:
        raise ValueError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")
    return [Point(hour=h, value=(100.0 * num / den) if den else None, attempts=den) for h, num, den in pairs]


def _usable(*, metric: str, point: Point, config: DetectorConfig) -> bool:
    if point.value is None:
        return False
    return metric == VOLUME or point.attempts >= config.min_attempts


def _usable_history(*, metric: str, history: Sequence[Point], config: DetectorConfig) -> list[Point]:
    # Inlined test: this filter runs over every training hour of every judged hour.
    least = 0 if metric == VOLUME else config.min_attempts
    return [p for p in history if p.value is not None and p.attempts >= least]


def _mad_sd(values: Sequence[float]) -> float:
    center = statistics.median(values)
    return MAD_TO_SD * statistics.median([abs(v - center) for v in values])


def _noise_floor(*, metric: str, expected: float, attempts: int, config: DetectorConfig) -> float:
    if metric == VOLUME:
        # On the Anscombe scale Poisson noise is 1; relative noise r of the count is r·sqrt(count).
        return max(1.0, config.volume_relative_floor * math.sqrt(max(expected, 0.0)))
    # The binomial noise of this hour's own sample: a quiet hour's rate may wobble more than the
    # busy hours that dominate the MAD.
    p = min(max(expected / 100.0, 0.01), 0.99)
    return max(config.rate_floor, 100.0 * math.sqrt(p * (1 - p) / max(attempts, 1)))


def _consistent_effect(effects: Sequence[float], *, neutral: float) -> float:
    """The effect closest to ``neutral`` when all lie on the same side of it, else ``neutral``."""
    if not effects or not (all(e > neutral for e in effects) or all(e < neutral for e in effects)):
        return neutral
    return min(effects, key=lambda e: abs(e - neutral))


def robust_estimate(
    *, metric: str, history: Sequence[Point], current: Point, config: DetectorConfig
) -> Estimate | None:
    """Seasonal median/MAD estimate for ``current`` from the ``history`` hours before it.

    None when the hour cannot be judged: undefined or under-sampled, or too little usable history.
    """
    if not _usable(metric=metric, point=current, config=config):
        return None
    usable = _usable_history(metric=metric, history=history, config=config)
    if len(usable) < config.min_training_points:
        return None
    multiplicative = metric == VOLUME

    by_hour: list[list[float]] = [[] for _ in range(_HOURS_PER_DAY)]
    for p in usable:
        by_hour[p.hour.hour].append(p.value)
    overall = statistics.median(p.value for p in usable)
    profile = [statistics.median(v) if len(v) >= config.min_same_hour_points else overall for v in by_hour]

    # Conflict reporting also follows the week (newsrooms publish less on weekends): a weekday's
    # deviation from the daily profile, as a ratio for volume (it scales with the level) and as an
    # offset for rates. A 14-day window holds each weekday only twice, and a day-long incident on one
    # of them would move a pooled median by half: the effect must show on every occurrence of the
    # weekday, and the weakest occurrence is used.
    neutral = 1.0 if multiplicative else 0.0
    weekday = [neutral] * _DAYS_PER_WEEK
    if config.weekly:
        by_date: dict[object, list[float]] = {}
        for p in usable:
            base = profile[p.hour.hour]
            if not multiplicative:
                by_date.setdefault(p.hour.date(), []).append(p.value - base)
            elif base > 0:
                by_date.setdefault(p.hour.date(), []).append(p.value / base)
        per_day: list[list[float]] = [[] for _ in range(_DAYS_PER_WEEK)]
        for day, deviations in by_date.items():
            if len(deviations) >= config.min_same_hour_points:
                per_day[day.weekday()].append(statistics.median(deviations))
        weekday = [_consistent_effect(effects, neutral=neutral) for effects in per_day]

    def predict(hour: datetime) -> float:
        base, adjust = profile[hour.hour], weekday[hour.weekday()]
        value = base * adjust if multiplicative else base + adjust
        return max(value, 0.0) if multiplicative else min(max(value, 0.0), 100.0)

    # Noise differs by time of day (a night hour holds fewer records), so the spread comes from the
    # same hour and its neighbours; the whole window when those are too few.
    hour = current.hour.hour
    near = {(hour + d) % _HOURS_PER_DAY for d in range(-config.spread_hours, config.spread_hours + 1)}
    scale = anscombe if multiplicative else float
    residuals = [scale(p.value) - scale(predict(p.hour)) for p in usable if p.hour.hour in near]
    if len(residuals) < 3 * config.min_same_hour_points:
        residuals = [scale(p.value) - scale(predict(p.hour)) for p in usable]
    expected = predict(current.hour)
    # The expected value is itself a median of a few points, with variance about pi/2 · sigma² / n:
    # an observation differs from it by the noise plus that error (a prediction, not a fit, interval).
    same_hour = len(by_hour[hour]) if len(by_hour[hour]) >= config.min_same_hour_points else len(usable)
    spread = _mad_sd(residuals) * math.sqrt(1 + math.pi / (2 * same_hour))
    floor = _noise_floor(metric=metric, expected=expected, attempts=current.attempts, config=config)
    return Estimate(observed=current.value, expected=expected, spread=max(spread, floor), counts=multiplicative)


def zscore_estimate(
    *, metric: str, history: Sequence[Point], current: Point, config: DetectorConfig
) -> Estimate | None:
    """The plain baseline: mean and standard deviation of the whole training window.

    Same sample guards as the robust detector, so the comparison is about the statistics alone.
    """
    if not _usable(metric=metric, point=current, config=config):
        return None
    values = [p.value for p in _usable_history(metric=metric, history=history, config=config)]
    if len(values) < config.min_training_points:
        return None
    mean = math.fsum(values) / len(values)
    # Sample standard deviation in floats (statistics.stdev is exact, hence slow); the floor only
    # guards the division: a constant history flags any change, as a plain z-score does.
    spread = max(math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1)), 1e-9)
    return Estimate(observed=current.value, expected=mean, spread=spread)


def _clip(*, metric: str, value: float) -> float:
    return max(value, 0.0) if metric == VOLUME else min(max(value, 0.0), 100.0)


def _isoformat(hour: datetime) -> str:
    return hour.astimezone(UTC).isoformat().replace("+00:00", "Z")


def to_anomaly(
    *, source: str, metric: str, hour: datetime, estimate: Estimate | None, threshold: float
) -> Anomaly | None:
    """The reportable anomaly when ``estimate`` is at least ``threshold`` spreads from expected."""
    if estimate is None:
        return None
    score = estimate.score
    if abs(score) < threshold:
        return None
    low, high = estimate.bounds(threshold)
    digits = 0 if metric == VOLUME else 1
    observed = round(estimate.observed, digits)
    return Anomaly(
        source=source,
        metric=metric,
        hour=_isoformat(hour),
        observed=int(observed) if metric == VOLUME else observed,
        expected=round(estimate.expected, 1),
        expected_low=round(_clip(metric=metric, value=low), 1),
        expected_high=round(_clip(metric=metric, value=high), 1),
        score=round(score, 2),
        direction=DROP if score < 0 else SPIKE,
    )


def detect(
    *, source: str, metric: str, history: Sequence[Point], current: Point, config: DetectorConfig
) -> Anomaly | None:
    """Robust seasonal detector: the anomaly at ``current``, or None."""
    estimate = robust_estimate(metric=metric, history=history, current=current, config=config)
    return to_anomaly(source=source, metric=metric, hour=current.hour, estimate=estimate, threshold=config.sensitivity)


def detect_zscore(
    *,
    source: str,
    metric: str,
    history: Sequence[Point],
    current: Point,
    config: DetectorConfig,
    threshold: float = ZSCORE_THRESHOLD,
) -> Anomaly | None:
    """Plain z-score detector (comparison baseline): the anomaly at ``current``, or None."""
    estimate = zscore_estimate(metric=metric, history=history, current=current, config=config)
    return to_anomaly(source=source, metric=metric, hour=current.hour, estimate=estimate, threshold=threshold)
