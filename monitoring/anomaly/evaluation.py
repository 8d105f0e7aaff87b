"""Event-level evaluation of a detector on the development world (:mod:`monitoring.anomaly.synthetic`).

The detector is driven exactly as the live selector drives it (:mod:`monitoring.anomaly.contract`):
per source, each hour is judged while it fills (``judge_partial`` at 25, 50 and 75 %) and then
observed when it closes. A finding is stamped with the moment it was made: hour index + fraction.

Scoring is per event, the way an operator lives with it:

- an *alarm* is a run of findings on one source with no gap longer than :data:`ALARM_GAP` hours; it is
  true when one of its findings lies inside an incident of that source (from its start to
  :data:`GRACE` hours after its end), false otherwise; precision = true alarms / alarms;
- an incident is *detected* when a finding of its metric and direction lies inside it (same window);
  recall = detected / incidents; delay = first such finding's moment − the incident's start;
- per incident kind: recall, median delay, and F1 of that recall with the world's precision (a false
  alarm cannot be attributed to a kind).

Per-kind figures come from worlds holding only that kind on the same background (same seed), so a
kind's precision counts the background's false alarms too; ``clean`` holds no incident at all.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from monitoring.anomaly.contract import LEARNING, READY, Detector, Finding, Readiness
from monitoring.anomaly.detector import DROP, RATE_METRICS, SPIKE, VOLUME, HourCounts
from monitoring.anomaly.synthetic import KINDS, Incident, Profile, World, generate, partial_counts

FRACTIONS = (0.25, 0.5, 0.75)
ALARM_GAP = 3.0
GRACE = 2.0
CLEAN = "clean"
MIXED = "mixed"
STREAMING = "streaming"
ZSCORE = "zscore"


@dataclass(frozen=True)
class Stamped:
    source: str
    at: float  # hour index + fraction when the finding was made
    finding: Finding


class ZScoreDetector:
    """The plain baseline: mean and standard deviation of the last 14 days, |z| ≥ 3, closed hours only."""

    def __init__(self, *, threshold: float = 3.0, window: int = 14 * 24, min_points: int = 72) -> None:
        self.threshold, self.min_points = threshold, min_points
        self.values = {metric: deque(maxlen=window) for metric in (VOLUME, *RATE_METRICS)}
        self.seen = 0

    def readiness(self) -> Readiness:
        state = READY if self.seen >= self.min_points else LEARNING
        return Readiness(state=state, hours_seen=self.seen, hours_needed=self.min_points)

    def judge_partial(self, counts: HourCounts, *, fraction: float) -> list[Finding]:
        return []

    def observe(self, counts: HourCounts) -> list[Finding]:
        found = []
        pairs = {
            VOLUME: (counts.geocoding_attempts, None),
            RATE_METRICS[0]: (counts.geocoding_successes, counts.geocoding_attempts),
            RATE_METRICS[1]: (counts.validation_passes, counts.validation_attempts),
        }
        for metric, (num, den) in pairs.items():
            if den is not None and den < 30:
                continue
            value = float(num) if den is None else 100.0 * num / den
            history = self.values[metric]
            if len(history) >= self.min_points:
                mean = math.fsum(history) / len(history)
                sd = max(math.sqrt(math.fsum((v - mean) ** 2 for v in history) / (len(history) - 1)), 1e-9)
                z = (value - mean) / sd
                if abs(z) >= self.threshold:
                    found.append(
                        Finding(
                            metric=metric,
                            hour=counts.hour,
                            fraction=1.0,
                            direction=DROP if z < 0 else SPIKE,
                            observed=value,
                            expected=mean,
                            expected_low=mean - self.threshold * sd,
                            expected_high=mean + self.threshold * sd,
                            score=z,
                            rule="zscore",
                            explanation=f"z-score {z:.1f}",
                        )
                    )
            history.append(value)
        self.seen += 1
        return found


DETECTORS: dict[str, Callable[..., Detector]] = {}


def _factory(name: str) -> Callable[..., Detector]:
    if name == ZSCORE:
        return lambda **_: ZScoreDetector()
    from monitoring.anomaly.streaming import make_detector

    return make_detector


def replay_source(
    *, detector: Detector, profile: Profile, counts: list[HourCounts], seed: int, fractions: Iterable[float] = FRACTIONS
) -> list[Stamped]:
    """Every finding the detector makes on one source's series, partial checks included."""
    stamped = []
    for index, hour in enumerate(counts):
        rng = random.Random(f"{seed}:{profile.name}:{index}:partial")
        for fraction in fractions:
            for finding in detector.judge_partial(partial_counts(hour, fraction=fraction, rng=rng), fraction=fraction):
                stamped.append(Stamped(profile.name, index + fraction, finding))
        for finding in detector.observe(hour):
            stamped.append(Stamped(profile.name, index + 1.0, finding))
    return stamped


def _replay_job(args: tuple[str, float | None, World, int]) -> list[Stamped]:
    name, sensitivity, world, position = args
    profile = world.profiles[position]
    options = {"tz": profile.tz} if sensitivity is None else {"tz": profile.tz, "sensitivity": sensitivity}
    detector = _factory(name)(**options)
    return replay_source(detector=detector, profile=profile, counts=world.series[profile.name], seed=world.seed)


def replay(*, name: str, world: World, sensitivity: float | None = None, workers: int = 1) -> list[Stamped]:
    jobs = [(name, sensitivity, world, i) for i in range(len(world.profiles))]
    if workers <= 1:
        results = [_replay_job(job) for job in jobs]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_replay_job, jobs))
    return [s for found in results for s in found]


def _inside(at: float, incident: Incident) -> bool:
    return incident.start <= at <= incident.start + incident.length + GRACE


def score(*, world: World, stamped: list[Stamped]) -> dict[str, Any]:
    """Alarms, precision, recall and delays (overall and per incident kind)."""
    by_source: dict[str, list[Stamped]] = {}
    for s in sorted(stamped, key=lambda s: (s.source, s.at)):
        by_source.setdefault(s.source, []).append(s)
    incidents_of: dict[str, list[Incident]] = {}
    for incident in world.incidents:
        incidents_of.setdefault(incident.source, []).append(incident)

    alarms = true_alarms = 0
    false_rules: dict[str, int] = {}
    for source, found in by_source.items():
        mine = incidents_of.get(source, [])
        cluster: list[Stamped] = []
        for s in [*found, None]:
            if s is not None and (not cluster or s.at - cluster[-1].at <= ALARM_GAP):
                cluster.append(s)
                continue
            if cluster:
                alarms += 1
                if any(_inside(c.at, i) for c in cluster for i in mine):
                    true_alarms += 1
                else:
                    rule = f"{cluster[0].finding.metric}/{cluster[0].finding.rule}"
                    false_rules[rule] = false_rules.get(rule, 0) + 1
            cluster = [s] if s is not None else []

    per_kind: dict[str, dict[str, Any]] = {}
    delays_all = []
    for incident in world.incidents:
        row = per_kind.setdefault(incident.kind, {"incidents": 0, "detected": 0, "delays": []})
        row["incidents"] += 1
        hits = [
            s.at
            for s in by_source.get(incident.source, [])
            if s.finding.metric == incident.metric
            and s.finding.direction == incident.direction
            and _inside(s.at, incident)
        ]
        if hits:
            row["detected"] += 1
            row["delays"].append(min(hits) - incident.start)
            delays_all.append(min(hits) - incident.start)
    for row in per_kind.values():
        delays = row.pop("delays")
        row["recall"] = round(row["detected"] / row["incidents"], 3) if row["incidents"] else None
        row["median_delay_h"] = round(statistics.median(delays), 2) if delays else None
    detected = sum(r["detected"] for r in per_kind.values())
    precision = true_alarms / alarms if alarms else 1.0
    # Alarms cannot be told apart by the shape they would have matched when they are false, so a
    # shape's F1 pairs its recall with the world's precision: what finding that shape costs in noise.
    for row in per_kind.values():
        recall = row["recall"] or 0.0
        row["f1"] = round(2 * precision * recall / (precision + recall), 3) if precision + recall else 0.0
    return {
        "alarms": alarms,
        "false_alarms": alarms - true_alarms,
        "false_alarm_rules": dict(sorted(false_rules.items())),
        "precision": round(precision, 3),
        "incidents": len(world.incidents),
        "detected": detected,
        "recall": round(detected / len(world.incidents), 3) if world.incidents else None,
        "median_delay_h": round(statistics.median(delays_all), 2) if delays_all else None,
        "per_kind": per_kind,
    }


def evaluate(
    *,
    seed: int = 7,
    days: int = 45,
    sources: int = 12,
    detectors: Iterable[str] = (STREAMING, ZSCORE),
    worlds: Iterable[str] = (MIXED, CLEAN),
    sensitivity: float | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """Scores per detector and world (``mixed``: every kind; ``clean``: none; a kind: that kind only)."""
    started = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    for world_name in worlds:
        kinds = KINDS if world_name == MIXED else () if world_name == CLEAN else (world_name,)
        world = generate(seed=seed, days=days, sources=sources, kinds=kinds)
        for name in detectors:
            stamped = replay(name=name, world=world, sensitivity=sensitivity, workers=workers)
            results.setdefault(name, {})[world_name] = score(world=world, stamped=stamped)
    return {
        "parameters": {"seed": seed, "days": days, "sources": sources, "sensitivity": sensitivity},
        "results": results,
        "seconds": round(time.perf_counter() - started, 1),
    }
