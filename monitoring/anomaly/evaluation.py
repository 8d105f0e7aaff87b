"""Walk-forward evaluation of the detectors on labelled synthetic data (``bench/anomaly_eval.py``).

Every hour after the first training window is judged from the ``training_days`` hours strictly
before it, the way the live selector judges the last complete hour: nothing from the future leaks
into a baseline. Scoring is per (source, metric, hour):

- true positive: a labelled hour flagged in the direction of its anomaly (drop, outage, collapse and
  drift go down; spike goes up);
- false positive: an unlabelled hour flagged, or a labelled one flagged the wrong way;
- false negative: a labelled hour not flagged, including hours the detector refuses to judge (under
  the minimum sample): the guard's cost is counted, not hidden;
- early drift hours (shift below the threshold of ``synthetic``) count neither way.

Per-kind figures come from data sets that hold only that kind on the same background (same seed),
so a kind's precision includes the false alarms it provokes and the background's, never another
kind's. ``clean`` has no injection at all: its false positives are the pure false-alarm rate.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

from monitoring.anomaly.detector import (
    METRICS,
    ZSCORE_THRESHOLD,
    DetectorConfig,
    Estimate,
    Point,
    points,
    robust_estimate,
    training_window,
    zscore_estimate,
)
from monitoring.anomaly.synthetic import DRIFT, KINDS, SPIKE, Dataset, generate

Estimator = Callable[..., Estimate | None]
Key = tuple[str, str, Any]

ROBUST = "robust"
ROBUST_DAILY = "robust_daily_only"
ZSCORE = "zscore"
CLEAN = "clean"
MIXED = "mixed"
DEFAULT_SWEEP = (2.0, 3.0, 4.0, 5.0, 6.0, 8.0)


def detectors(*, config: DetectorConfig) -> dict[str, tuple[Estimator, DetectorConfig, float]]:
    """Name → (estimator, its config, flagging threshold). ``robust_daily_only`` drops the weekday term."""
    return {
        ROBUST: (robust_estimate, config, config.sensitivity),
        ROBUST_DAILY: (robust_estimate, replace(config, weekly=False), config.sensitivity),
        ZSCORE: (zscore_estimate, config, ZSCORE_THRESHOLD),
    }


def score_series(
    *, estimator: Estimator, metric: str, series: Sequence[Point], training_days: int, config: DetectorConfig
) -> list[float | None]:
    """Scores of every hour after the first ``training_days``, each from the hours strictly before it.

    ``series`` is hourly without gaps and starts at midnight UTC, as the synthetic data sets do.
    """
    scores: list[float | None] = []
    for t in range(training_days * 24, len(series)):
        start = max(0, t - training_window(hour=series[t].hour, training_days=training_days))
        estimate = estimator(metric=metric, history=series[start:t], current=series[t], config=config)
        scores.append(None if estimate is None else estimate.score)
    return scores


class _Scorer:
    """Walk-forward scores, cached by series content: data sets on the same background share most series."""

    def __init__(self, *, training_days: int) -> None:
        self.training_days = training_days
        self._cache: dict[tuple, list[float | None]] = {}
        self.seconds = 0.0

    def scores(
        self, *, name: str, estimator: Estimator, config: DetectorConfig, dataset: Dataset
    ) -> dict[Key, float | None]:
        result: dict[Key, float | None] = {}
        for source, counts in dataset.series.items():
            for metric in METRICS:
                series = points(metric=metric, counts=counts)
                key = (name, metric, tuple((p.value, p.attempts) for p in series))
                if key not in self._cache:
                    started = time.perf_counter()
                    self._cache[key] = score_series(
                        estimator=estimator,
                        metric=metric,
                        series=series,
                        training_days=self.training_days,
                        config=config,
                    )
                    self.seconds += time.perf_counter() - started
                for point, score in zip(series[self.training_days * 24 :], self._cache[key], strict=True):
                    result[(source, metric, point.hour)] = score
        return result


def _ratio(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 3) if denominator else None


def _f1(precision: float | None, recall: float | None) -> float | None:
    if not precision or not recall:
        return 0.0 if precision is not None and recall is not None else None
    return round(2 * precision * recall / (precision + recall), 3)


def confusion(*, dataset: Dataset, scores: dict[Key, float | None], threshold: float) -> dict[str, Any]:
    """Point-level precision/recall/F1 plus event-level recall at one flagging threshold."""
    tp = fp = fn = negatives = 0
    flagged_keys = set()
    by_kind: dict[str, list[int]] = {}
    for key, score in scores.items():
        flagged = score is not None and abs(score) >= threshold
        label = dataset.labels.get(key)
        if label is None:
            negatives += 1
            fp += flagged
            continue
        if not label.required:
            if flagged:
                flagged_keys.add(key)
            continue
        right_way = flagged and (score > 0) == (label.kind == SPIKE)
        tp += right_way
        fn += not right_way
        counts = by_kind.setdefault(label.kind, [0, 0])
        counts[0 if right_way else 1] += 1
        fp += flagged and not right_way
        if right_way:
            flagged_keys.add(key)
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)

    events = detected = 0
    delays = []
    for injection in dataset.injections:
        hours = [
            (injection.source, injection.metric, dataset.series[injection.source][i].hour)
            for i in range(injection.start, injection.start + injection.length)
        ]
        required = [k for k in hours if k in scores and dataset.labels[k].required]
        if not required:
            continue
        events += 1
        hits = [i for i, k in enumerate(hours) if k in flagged_keys]
        if hits:
            detected += 1
            if injection.kind == DRIFT:
                delays.append(hits[0])
    return {
        "precision": precision,
        "recall": recall,
        "f1": _f1(precision, recall),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "false_alarms_per_1000_normal_points": round(1000 * fp / negatives, 2) if negatives else None,
        "events": events,
        "events_detected": detected,
        "event_recall": _ratio(detected, events),
        "drift_first_flag_hours": sorted(delays) if delays else None,
        "recall_by_kind": {kind: _ratio(hit, hit + miss) for kind, (hit, miss) in sorted(by_kind.items())},
    }


def evaluate(
    *,
    seed: int = 7,
    days: int = 42,
    per_kind: int = 3,
    training_days: int = 14,
    config: DetectorConfig | None = None,
    datasets: Iterable[str] = (CLEAN, *KINDS, MIXED),
    sweep: Sequence[float] = DEFAULT_SWEEP,
    sources: Iterable[Any] | None = None,
    only: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Generate the data sets, run every detector walk-forward and report precision/recall.

    ``datasets`` picks among ``clean``, each kind alone and ``mixed`` (all kinds). ``sweep`` lists
    the thresholds at which the mixed data set is also scored, for every detector. ``only`` limits
    the detectors run (names from :func:`detectors`).
    """
    config = config or DetectorConfig()
    started = time.perf_counter()
    scorer = _Scorer(training_days=training_days)
    extra = {} if sources is None else {"sources": tuple(sources)}
    results: dict[str, dict[str, Any]] = {}
    described: dict[str, Any] = {}
    wanted = None if only is None else set(only)
    chosen = {name: spec for name, spec in detectors(config=config).items() if wanted is None or name in wanted}
    for name in datasets:
        kinds = () if name == CLEAN else KINDS if name == MIXED else (name,)
        dataset = generate(seed=seed, days=days, per_kind=per_kind, kinds=kinds, **extra)
        described[name] = {
            **dataset.description,
            "labelled_points": len(dataset.labels),
            "positive_points": sum(1 for label in dataset.labels.values() if label.required),
        }
        for detector, (estimator, detector_config, threshold) in chosen.items():
            scores = scorer.scores(name=detector, estimator=estimator, config=detector_config, dataset=dataset)
            row = confusion(dataset=dataset, scores=scores, threshold=threshold)
            row["evaluated_points"] = len(scores)
            row["judged_points"] = sum(1 for s in scores.values() if s is not None)
            if name == MIXED and sweep:
                row["sweep"] = {
                    str(t): {
                        k: v
                        for k, v in confusion(dataset=dataset, scores=scores, threshold=t).items()
                        if k in ("precision", "recall", "f1", "fp")
                    }
                    for t in sweep
                }
            results.setdefault(detector, {})[name] = row
    return {
        "parameters": {
            "seed": seed,
            "days": days,
            "per_kind": per_kind,
            "training_days": training_days,
            "sensitivity": config.sensitivity,
            "zscore_threshold": ZSCORE_THRESHOLD,
            "min_attempts": config.min_attempts,
            "min_training_points": config.min_training_points,
            "min_same_hour_points": config.min_same_hour_points,
        },
        "datasets": described,
        "results": results,
        "scoring_seconds": round(scorer.seconds, 2),
        "total_seconds": round(time.perf_counter() - started, 2),
    }
