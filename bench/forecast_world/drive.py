"""Drives one forecaster over one source's hours of the held-out world and scores it there.

Per closed UTC hour, in order: ``observe`` (timed), then once ready ``forecasts(horizon_hours=24)``
(timed: every metric's projections, bands and trend), the projections at 1, 6 and 24 hours kept for
scoring, and every warning rule updated with that hour's forecast and the smoothed rate the threshold
rule would judge now. Only the forecaster's public API is used; the world is read only to score.
"""

from __future__ import annotations

import time
from datetime import timedelta

from bench.anomaly_world.evaluate import cached_world
from bench.anomaly_world.labels import GEOCODING, VALIDATION
from bench.anomaly_world.world import hour_totals, source_counts
from bench.forecast_world.scoring import (
    MIN_RATE_SAMPLE,
    ErrorTally,
    score_warnings,
    smoothed_rate,
)
from monitoring.anomaly.detector import HourCounts
from monitoring.anomaly.seasonal import LocalClock
from monitoring.forecast import BELOW, CrossingWarning, ForecastConfig, WarningPolicy, make_forecaster

VOLUME = "volume"
METRICS = (VOLUME, GEOCODING, VALIDATION)
HORIZONS = (1, 6, 24)
# The app's rate thresholds (settings MONITORING_THRESHOLDS; the rate alert rules' medium and critical
# levels): warn = the status turns degraded, critical = critical. There is no volume threshold.
THRESHOLDS = {
    GEOCODING: {"warn": 85.0, "critical": 70.0},
    VALIDATION: {"warn": 90.0, "critical": 75.0},
}
# Warning policies compared on the same forecasts (the engine's default first).
POLICIES = {
    "central": WarningPolicy(edge="central"),
    "central_trend": WarningPolicy(edge="central", require_trend=True),
    "central_confident": WarningPolicy(edge="central", require_confident=True),
    "earliest": WarningPolicy(edge="earliest"),
    "band": WarningPolicy(edge="band"),
}
MATURE_FROM = 7 * 24  # weekly naive defined, weekday factors seen; the headline figures start here
INCIDENT_MARGIN = (1, 2)  # hours before an incident's start and after its end counted as its hours


def _rate(x: int, n: int) -> float | None:
    return 100.0 * x / n if n else None


class _Naive:
    """The naive baselines' values for a target hour, from what was known when the forecast was issued."""

    def __init__(self, *, values: list[float | None], clock: LocalClock, hours: list) -> None:
        filled, last = [], None
        for v in values:
            last = v if v is not None else last
            filled.append(last)
        self.filled = filled
        self.index: dict[tuple, int] = {}
        self.slots = [clock.slot(h) for h in hours]
        for i, s in enumerate(self.slots):
            self.index.setdefault((s.day, s.local_hour), i)

    def last(self, t: int) -> float | None:
        return self.filled[t]

    def days_back(self, target: int, days: int, issued: int) -> float | None:
        s = self.slots[target]
        i = self.index.get((s.day - timedelta(days=days), s.local_hour))
        if i is None or i > issued:  # a clock change: fall back to the same UTC hour
            i = target - 24 * days
        return self.filled[i] if 0 <= i <= issued else None


def run_source(*, seed: int, sources: int, days: int, source: int, config: ForecastConfig | None = None) -> dict:
    world = cached_world(seed, sources, days)
    profile = world.profiles[source]
    totals = [hour_totals(q) for q in source_counts(world=world, source=source)]
    n_hours = len(totals)
    hours = [world.start + timedelta(hours=i) for i in range(n_hours)]
    pairs = {
        GEOCODING: [(gs, ga) for ga, gs, _va, _vp in totals],
        VALIDATION: [(vp, va) for _ga, _gs, va, vp in totals],
    }
    actual = {
        VOLUME: [float(t[0]) for t in totals],
        **{m: [_rate(x, n) for x, n in p] for m, p in pairs.items()},
    }
    smoothed = {m: smoothed_rate(p) for m, p in pairs.items()}
    clock = LocalClock(profile.tz)
    naive = {m: _Naive(values=v, clock=clock, hours=hours) for m, v in actual.items()}
    incident_hours: dict[str, set[int]] = {m: set() for m in METRICS}
    cause: dict[str, dict[int, str]] = {m: {} for m in THRESHOLDS}
    for e in world.events_of(source):
        first = int((e.start - world.start).total_seconds() // 3600) - INCIDENT_MARGIN[0]
        last = int((e.end - world.start).total_seconds() // 3600) + INCIDENT_MARGIN[1]
        for metric in METRICS:
            incident_hours[metric].update(range(first, last + 1))
        for metric in e.metrics:
            if metric in cause:
                for c in range(first, last + 1):
                    cause[metric].setdefault(c, e.kind)

    forecaster = make_forecaster(tz=profile.tz, config=config)
    rules = {
        (m, level, name): CrossingWarning(threshold=thr, direction=BELOW, policy=policy)
        for m, levels in THRESHOLDS.items()
        for level, thr in levels.items()
        for name, policy in POLICIES.items()
    }
    active = {key: bytearray(n_hours) for key in rules}
    issued: list[tuple[int, dict]] = []
    observe_s = forecast_s = rule_s = 0.0
    forecasts_made = rule_calls = 0
    for i, (ga, gs, va, vp) in enumerate(totals):
        counts = HourCounts(
            hour=hours[i], geocoding_attempts=ga, geocoding_successes=gs, validation_attempts=va, validation_passes=vp
        )
        t0 = time.perf_counter()
        forecaster.observe(counts)
        t1 = time.perf_counter()
        observe_s += t1 - t0
        if forecaster.readiness().state != "ready":
            continue
        fs = forecaster.forecasts(horizon_hours=24)
        t2 = time.perf_counter()
        forecast_s += t2 - t1
        forecasts_made += 1
        kept = {}
        for m, f in fs.items():
            if f.ready:
                kept[m] = {h: (f.at(h).value, f.at(h).low, f.at(h).high) for h in HORIZONS}
        issued.append((i, kept))
        t3 = time.perf_counter()
        for key, rule in rules.items():
            m = key[0]
            if rule.update(forecast=fs[m], current=smoothed[m][i]).active:
                active[key][i] = 1
        rule_s += time.perf_counter() - t3
        rule_calls += len(rules)

    errors: dict[str, ErrorTally] = {}
    for i, kept in issued:
        period = "mature" if i >= MATURE_FROM else "young"
        for m, by_h in kept.items():
            for h, (value, low, high) in by_h.items():
                target = i + h
                if target >= n_hours:
                    continue
                if m != VOLUME and pairs[m][target][1] < MIN_RATE_SAMPLE:
                    continue
                truth = actual[m][target]
                nv = naive[m]
                preds = {
                    "forecast": value,
                    "last": nv.last(i),
                    "yesterday": nv.days_back(target, 1, i),
                    "last_week": nv.days_back(target, 7, i),
                }
                if any(v is None for v in preds.values()):
                    if period == "mature" or preds["last"] is None or preds["yesterday"] is None:
                        continue
                    preds["last_week"] = preds["yesterday"]  # young: no week yet (reported without it)
                subsets = ["all"] if target in incident_hours[m] else ["all", "background"]
                for subset in subsets:
                    key = f"{m}|{h}|{period}|{subset}"
                    tally = errors.get(key)
                    if tally is None:
                        tally = errors[key] = ErrorTally()
                    tally.add(actual=truth, predictions=preds, low=low, high=high, volume=m == VOLUME)

    warnings = {}
    for (m, level, policy), flags in active.items():
        warnings[f"{m}|{level}|{policy}"] = score_warnings(
            active=flags,
            smoothed=smoothed[m],
            threshold=THRESHOLDS[m][level],
            first=MATURE_FROM,
            cause=cause[m],
        )
    return {
        "seed": seed,
        "source": profile.name,
        "hours": n_hours,
        "errors": errors,
        "warnings": warnings,
        "timing": {
            "observe_s": observe_s,
            "observes": n_hours,
            "forecasts_s": forecast_s,
            "forecasts": forecasts_made,
            "rules_s": rule_s,
            "rule_calls": rule_calls,
        },
        "sample": {m: sum(p[1] for p in pairs[m]) / n_hours for m in pairs} | {VOLUME: sum(actual[VOLUME]) / n_hours},
    }
