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


def _contribution(
    *,
    metric: str,
    hour: int,
    quarters: list[int],
    seen: int,
    effect: dict[int, float],
    profile: Profile,
    bg: Background,
) -> float:
    """z² of the shift over ``quarters`` (all in ``hour``) against the source's own noise, true expectation known.

    ``seen`` is how many of the hour's quarters have been observed (4 once it is closed): the noise is that
    of the observed part of the hour, of which the incident's quarters are a part.
    """
    if hour * QUARTERS + QUARTERS > len(bg.volume):
        return 0.0
    mean = sum(bg.volume[hour * QUARTERS : hour * QUARTERS + seen])
    if metric == VOLUME:
        shift = sum(bg.volume[q] * (1.0 - effect[q]) for q in quarters)
        # One gamma multiplier per hour: the quarters of an hour share it.
        variance = mean + mean * mean / profile.shape
    else:
        p = bg.geocoding[hour] if metric == GEOCODING else bg.validation[hour]
        concentration = profile.geocoding_concentration if metric == GEOCODING else profile.validation_concentration
        n = mean if metric == GEOCODING else mean * bg.geocoding[hour]
        if n < 1.0:
            return 0.0
        shift = sum(effect[q] * bg.volume[q] for q in quarters) / mean if mean else 0.0
        variance = p * (1.0 - p) / n * (1.0 + (n - 1.0) / (concentration + 1.0))
    return shift * shift / variance if variance > 0 else 0.0


def oracle_z(*, event: Event, start: datetime, profile: Profile, bg: Background) -> float:
    """The likelihood-ratio z an oracle gets from the whole incident (hourly sums, true noise)."""
    total = 0.0
    for metric, per_quarter in effects(event=event, start=start).items():
        hours: dict[int, list[int]] = {}
        for q in per_quarter:
            hours.setdefault(q // QUARTERS, []).append(q)
        for hour, quarters in hours.items():
            total += _contribution(
                metric=metric, hour=hour, quarters=quarters, seen=QUARTERS, effect=per_quarter, profile=profile, bg=bg
            )
    return math.sqrt(total)


def oracle_delay(*, event: Event, start: datetime, profile: Profile, bg: Background, z: float) -> float | None:
    """Hours from the start until the incident's evidence so far reaches ``z`` for an oracle, or None.

    The oracle knows the true expectation, the noise and the moment the incident started, and tests once.
    Evidence is counted as :func:`oracle_z` counts it (a normal approximation of the source's noise), at
    quarter-hour steps, the current hour as far as it has been observed. For rate shifts and slow slides
    that makes it a lower bound on the delay of any detector that needs ``z`` spreads (a real one tests
    continuously, so it needs more); for deep volume drops it understates the evidence of a count far
    below a skewed negative binomial, so a detector can be faster there.
    """
    per_metric = effects(event=event, start=start)
    first = int((event.start - start).total_seconds() // 900)
    last = max(max(q) for q in per_metric.values()) + 1
    closed = 0.0
    for q in range(first, last):
        hour, seen = q // QUARTERS, q % QUARTERS + 1
        current = list(range(max(first, hour * QUARTERS), q + 1))
        partial = sum(
            _contribution(metric=m, hour=hour, quarters=current, seen=seen, effect=e, profile=profile, bg=bg)
            for m, e in per_metric.items()
        )
        if closed + partial >= z * z:
            return (q + 1 - first) / QUARTERS
        if seen == QUARTERS:
            closed += partial
    return None


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
