"""Labelled incidents: drawn per source from ranges, placed over the whole period, kept only if real.

An incident is kept only when an oracle that knows the true expectation could see it: the
likelihood-ratio z of the shift, summed over the incident's hours with the source's own noise
(negative binomial volume, beta-binomial rates), must reach :data:`ORACLE_Z`. Without that rule a
−5-point rate drop on a 10-records-per-hour source would be a label no method could ever find, and the
recall figures would measure the generator instead of the detector. The rule knows nothing about any
detector: it is the best any detector could do with perfect knowledge.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

from bench.anomaly_world.labels import (
    DEGRADATION,
    DROP,
    GEOCODING,
    GEOCODING_DROP,
    KINDS,
    OUTAGE,
    SPIKE,
    SPIKE_FLOOD,
    VALIDATION,
    VALIDATION_DROP,
    VALIDATION_STEP,
    VOLUME,
    VOLUME_DROP,
    Event,
)
from bench.anomaly_world.sampling import stream
from bench.anomaly_world.sources import QUARTERS, Background, Profile

ORACLE_Z = 7.0
FIRST_HOUR = 4 * 24  # incidents start from day 4: inside any 14-day training window, but not in its first hours
SEPARATION_HOURS = 24  # distinct incidents of one source are at least a day apart
_TRIES = 300

Effects = dict[str, dict[int, float]]  # metric → {quarter index: volume factor or rate change (fraction)}


def effects(*, event: Event, start: datetime) -> Effects:
    """Per-quarter effect of ``event``: a volume factor, or a rate change as a fraction."""
    first = int((event.start - start).total_seconds() // 900)
    last = int((event.end - start).total_seconds() // 900)
    ramp = max(int(event.ramp_hours * QUARTERS), 1)
    out: Effects = {}
    for metric in event.metrics:
        per_quarter = {}
        for q in range(first, last):
            share = min((q - first + 1) / ramp, 1.0) if event.kind == DEGRADATION else 1.0
            if metric == VOLUME:
                per_quarter[q] = 1.0 + (event.magnitude - 1.0) * share
            else:
                per_quarter[q] = event.magnitude / 100.0 * share
        out[metric] = per_quarter
    return out


def oracle_z(*, event: Event, start: datetime, profile: Profile, bg: Background) -> float:
    """The likelihood-ratio z an oracle gets from the whole incident (hourly sums, true noise)."""
    total = 0.0
    for metric, per_quarter in effects(event=event, start=start).items():
        hours: dict[int, list[int]] = {}
        for q in per_quarter:
            hours.setdefault(q // QUARTERS, []).append(q)
        for hour, quarters in hours.items():
            if hour * QUARTERS + QUARTERS > len(bg.volume):
                continue
            lam = bg.volume[hour * QUARTERS : hour * QUARTERS + QUARTERS]
            mean = sum(lam)
            if metric == VOLUME:
                shift = sum(bg.volume[q] * (1.0 - per_quarter[q]) for q in quarters)
                variance = mean + mean * mean / profile.shape
            else:
                p = bg.geocoding[hour] if metric == GEOCODING else bg.validation[hour]
                concentration = (
                    profile.geocoding_concentration if metric == GEOCODING else profile.validation_concentration
                )
                n = mean if metric == GEOCODING else mean * bg.geocoding[hour]
                if n < 1.0:
                    continue
                shift = sum(per_quarter[q] * bg.volume[q] for q in quarters) / mean if mean else 0.0
                variance = p * (1.0 - p) / n * (1.0 + (n - 1.0) / (concentration + 1.0))
            if variance > 0:
                total += shift * shift / variance
    return math.sqrt(total)


def _quarter(rng: random.Random, *, lowest: int, highest: int) -> int:
    return rng.randrange(lowest * QUARTERS, max(highest * QUARTERS, lowest * QUARTERS + 1))


def propose(*, rng: random.Random, kind: str, hours: int) -> tuple[tuple[str, ...], str, int, int, float, float]:
    """(metrics, direction, first quarter, quarters, magnitude, ramp hours) drawn from the kind's ranges."""
    if kind == VOLUME_DROP:
        length = rng.randint(2 * QUARTERS, 24 * QUARTERS)
        return (VOLUME,), DROP, _quarter(rng, lowest=FIRST_HOUR, highest=hours), length, rng.uniform(0.1, 0.6), 0.0
    if kind == OUTAGE:
        length = rng.randint(QUARTERS, 12 * QUARTERS)
        return (VOLUME,), DROP, _quarter(rng, lowest=FIRST_HOUR, highest=hours), length, 0.0, 0.0
    if kind == SPIKE_FLOOD:
        length = rng.randint(QUARTERS, 6 * QUARTERS)
        return (VOLUME,), SPIKE, _quarter(rng, lowest=FIRST_HOUR, highest=hours), length, rng.uniform(3.0, 10.0), 0.0
    if kind in (GEOCODING_DROP, VALIDATION_DROP):
        metric = GEOCODING if kind == GEOCODING_DROP else VALIDATION
        length = rng.randint(QUARTERS, 12 * QUARTERS)
        return (metric,), DROP, _quarter(rng, lowest=FIRST_HOUR, highest=hours), length, -rng.uniform(5.0, 30.0), 0.0
    if kind == VALIDATION_STEP:
        first = _quarter(rng, lowest=FIRST_HOUR, highest=hours - 24)
        length = hours * QUARTERS - first if rng.random() < 0.5 else rng.randint(2 * 96, 7 * 96)
        return (VALIDATION,), DROP, first, length, -rng.uniform(5.0, 20.0), 0.0
    if kind == DEGRADATION:
        metric = rng.choice((VOLUME, GEOCODING, VALIDATION))
        ramp = rng.randint(24, 48)
        hold = rng.randint(0, 6)
        magnitude = rng.uniform(0.4, 0.6) if metric == VOLUME else -rng.uniform(10.0, 30.0)
        first = _quarter(rng, lowest=FIRST_HOUR, highest=hours - ramp - hold)
        return (metric,), DROP, first, (ramp + hold) * QUARTERS, magnitude, float(ramp)
    raise ValueError(f"unknown kind {kind!r}")


def draw_incidents(
    *,
    seed: int,
    profiles: list[Profile],
    backgrounds: list[Background],
    start: datetime,
    hours: int,
    kinds: tuple[str, ...] = KINDS,
) -> list[Event]:
    """1–3 incidents per source (mean ≈ 2), placed anywhere from day 4 to the end.

    Each incident tries the kinds least used so far first (ties in random order), so the kinds stay
    balanced although a small source cannot host a short rate drop an oracle could see.
    """
    events: list[Event] = []
    used = dict.fromkeys(kinds, 0)
    for profile, bg in zip(profiles, backgrounds, strict=True):
        rng = stream(seed, 4, profile.index)
        taken: list[tuple[int, int]] = []  # quarter ranges, padded by the separation
        for _ in range(rng.choice((1, 1, 2, 2, 2, 3, 3))):
            order = sorted(kinds, key=lambda k: (used[k], rng.random()))
            event = _place(
                rng=rng, kinds=order, profile=profile, bg=bg, start=start, hours=hours, taken=taken, next_id=len(events)
            )
            if event is not None:
                events.append(event)
                used[event.kind] += 1
    return events


def _place(
    *,
    rng: random.Random,
    kinds: list[str],
    profile: Profile,
    bg: Background,
    start: datetime,
    hours: int,
    taken: list[tuple[int, int]],
    next_id: int,
) -> Event | None:
    pad = SEPARATION_HOURS * QUARTERS
    for kind in kinds:
        for _ in range(_TRIES):
            metrics, direction, first, length, magnitude, ramp = propose(rng=rng, kind=kind, hours=hours)
            last = min(first + length, hours * QUARTERS)
            if any(first < b + pad and a - pad < last for a, b in taken):
                continue
            event = Event(
                id=next_id,
                source=profile.name,
                kind=kind,
                metrics=metrics,
                direction=direction,
                start=start + timedelta(minutes=15 * first),
                end=start + timedelta(minutes=15 * last),
                magnitude=magnitude,
                ramp_hours=ramp,
            )
            if oracle_z(event=event, start=start, profile=profile, bg=bg) >= ORACLE_Z:
                taken.append((first, last))
                return event
    return None
