"""A labelled synthetic data set for evaluating the anomaly detectors (deterministic for a seed).

Every source gets hourly counts with a daily cycle (its own amplitude and peak hour), a weekly cycle
(fewer reports on weekends for news-based feeds), over-dispersed Poisson volume and binomial rates
whose probability itself wobbles from hour to hour. Anomalies are injected on top, each labelled per
(source, metric, hour) with its kind:

- ``drop``: volume cut to 5-50 % for 1-6 h;
- ``spike``: volume ×2-5 for 1-4 h (a backfill, a duplicated feed);
- ``outage``: volume 0 for 2-12 h (rates are then undefined and not labelled);
- ``rate_collapse``: one rate falls by 15-50 points for 1-8 h (a geocoder or validator failing);
- ``drift``: volume (down to 30-50 %) or one rate (down 15-30 points) slides linearly over 1-3 days,
  then recovers. A drift hour is a positive once the injected shift reaches :data:`DRIFT_VOLUME_SHIFT`
  of the normal volume or :data:`DRIFT_RATE_SHIFT` points; before that it is "don't care" (a flag there
  is neither a true nor a false positive, a miss is not a false negative).

The noise of every hour is drawn once, before injection, and anomalies transform the clean
parameters with the same random numbers: data sets with different injections share the same
background, so their false positives are comparable.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from statistics import NormalDist

from monitoring.anomaly.detector import GEOCODING_SUCCESS_RATE, VALIDATION_PASS_RATE, VOLUME, HourCounts

DROP = "drop"
SPIKE = "spike"
OUTAGE = "outage"
RATE_COLLAPSE = "rate_collapse"
DRIFT = "drift"
KINDS = (DROP, SPIKE, OUTAGE, RATE_COLLAPSE, DRIFT)

DRIFT_VOLUME_SHIFT = 0.3
DRIFT_RATE_SHIFT = 10.0
# A Monday: weekly patterns line up with calendar weeks, which makes tables easier to read.
DEFAULT_START = datetime(2025, 1, 6, tzinfo=UTC)
_NORMAL = NormalDist()


@dataclass(frozen=True, kw_only=True)
class SourceProfile:
    name: str
    volume: float  # mean records per hour
    daily_amplitude: float  # relative swing of the daily cycle
    peak_hour: int  # UTC hour of the daily maximum
    weekend_factor: float
    geocoding: float  # success probability
    validation: float
    overdispersion: float  # relative sd of the hourly volume beyond Poisson


# Conflict-event feeds of different size, rhythm and quality; the last is small enough that its
# night hours fall under the minimum sample for rates.
SOURCES = (
    SourceProfile(
        name="gdelt",
        volume=1500,
        daily_amplitude=0.35,
        peak_hour=14,
        weekend_factor=0.8,
        geocoding=0.86,
        validation=0.91,
        overdispersion=0.08,
    ),
    SourceProfile(
        name="liveuamap",
        volume=650,
        daily_amplitude=0.5,
        peak_hour=10,
        weekend_factor=0.95,
        geocoding=0.88,
        validation=0.92,
        overdispersion=0.1,
    ),
    SourceProfile(
        name="acled",
        volume=420,
        daily_amplitude=0.45,
        peak_hour=12,
        weekend_factor=0.55,
        geocoding=0.93,
        validation=0.96,
        overdispersion=0.1,
    ),
    SourceProfile(
        name="reliefweb",
        volume=180,
        daily_amplitude=0.6,
        peak_hour=9,
        weekend_factor=0.4,
        geocoding=0.9,
        validation=0.94,
        overdispersion=0.12,
    ),
    SourceProfile(
        name="local-news",
        volume=90,
        daily_amplitude=0.7,
        peak_hour=17,
        weekend_factor=0.7,
        geocoding=0.91,
        validation=0.95,
        overdispersion=0.15,
    ),
    SourceProfile(
        name="telegram-osint",
        volume=40,
        daily_amplitude=0.6,
        peak_hour=20,
        weekend_factor=1.0,
        geocoding=0.75,
        validation=0.85,
        overdispersion=0.2,
    ),
)


@dataclass(frozen=True, kw_only=True)
class Injection:
    source: str
    kind: str
    metric: str
    start: int  # hour index
    length: int
    magnitude: float  # volume factor, or rate points removed (at the end of a drift)

    def shift(self, index: int) -> float:
        """How far the injection has moved the metric at ``index`` (0..1 of ``magnitude``)."""
        if not self.start <= index < self.start + self.length:
            return 0.0
        return (index - self.start + 1) / self.length if self.kind == DRIFT else 1.0


@dataclass(frozen=True, kw_only=True)
class Label:
    kind: str
    required: bool  # False: don't care (an early drift hour)


@dataclass(frozen=True, kw_only=True)
class Dataset:
    start: datetime
    hours: int
    seed: int
    series: dict[str, list[HourCounts]]
    labels: dict[tuple[str, str, datetime], Label]
    injections: tuple[Injection, ...]
    description: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class _Noise:
    volume: float  # uniform for the Poisson draw
    dispersion: float  # standard normal for the over-dispersion
    geocoding: float  # uniforms for the binomial draws
    validation: float
    geocoding_p: float  # standard normal wobble of the probabilities
    validation_p: float


def _poisson(lam: float, u: float) -> int:
    if lam <= 0:
        return 0
    if lam >= 50:
        return max(0, round(lam + math.sqrt(lam) * _NORMAL.inv_cdf(u)))
    # Exact inverse CDF for small means, where the normal approximation is visibly wrong.
    k, term = 0, math.exp(-lam)
    total = term
    while total < u and k < 10 * lam + 50:
        k += 1
        term *= lam / k
        total += term
    return k


def _binomial(n: int, p: float, u: float) -> int:
    if n <= 0:
        return 0
    variance = n * p * (1 - p)
    if variance >= 9:
        return min(n, max(0, round(n * p + math.sqrt(variance) * _NORMAL.inv_cdf(u))))
    if p > 0.5:
        # Walked from the nearer tail: (1 - p) ** n underflows for large n when p is close to 1.
        return n - _binomial(n, 1 - p, 1 - u)
    # Exact inverse CDF for the small samples of quiet hours.
    q = 1 - p
    k, term = 0, q**n
    total = term
    while total < u and k < n:
        term *= (n - k) / (k + 1) * p / q
        k += 1
        total += term
    return k


def _daily(profile: SourceProfile, hour: datetime) -> float:
    return 1 + profile.daily_amplitude * math.cos(2 * math.pi * (hour.hour - profile.peak_hour) / 24)


def _weekly(profile: SourceProfile, hour: datetime) -> float:
    return profile.weekend_factor if hour.weekday() >= 5 else 1.0


def _rate_rhythm(profile: SourceProfile, hour: datetime) -> float:
    # Night batches come from other regions, with harder place names: a small daily swing in the rates.
    return 0.02 * math.cos(2 * math.pi * (hour.hour - profile.peak_hour) / 24)


def _place(
    *, rng: random.Random, hours: int, first: int, sources: Iterable[SourceProfile], per_kind: int
) -> list[Injection]:
    injections: list[Injection] = []
    for profile in sources:
        taken: list[tuple[int, int]] = []
        plan = [kind for kind in KINDS for _ in range(per_kind)]
        rng.shuffle(plan)
        for kind in plan:
            metric = VOLUME
            if kind == DROP:
                length, magnitude = rng.randint(1, 6), rng.uniform(0.05, 0.5)
            elif kind == SPIKE:
                length, magnitude = rng.randint(1, 4), rng.uniform(2.0, 5.0)
            elif kind == OUTAGE:
                length, magnitude = rng.randint(2, 12), 0.0
            elif kind == RATE_COLLAPSE:
                metric = rng.choice((GEOCODING_SUCCESS_RATE, VALIDATION_PASS_RATE))
                length, magnitude = rng.randint(1, 8), rng.uniform(15.0, 50.0)
            else:
                metric = rng.choice((VOLUME, GEOCODING_SUCCESS_RATE, VALIDATION_PASS_RATE))
                length = rng.randint(24, 72)
                magnitude = rng.uniform(0.5, 0.7) if metric == VOLUME else rng.uniform(15.0, 30.0)
            if hours - length <= first:
                continue  # too short a data set: an event that cannot fit is left out
            # A day apart from each other, so each event is judged against a baseline it did not shape.
            for _ in range(1000):
                start = rng.randrange(first, hours - length)
                if all(start + length + 24 <= s or e + 24 <= start for s, e in taken):
                    taken.append((start, start + length))
                    injections.append(
                        Injection(
                            source=profile.name,
                            kind=kind,
                            metric=metric,
                            start=start,
                            length=length,
                            magnitude=magnitude,
                        )
                    )
                    break
    return sorted(injections, key=lambda i: (i.source, i.start))


def _label(injection: Injection, index: int) -> Label | None:
    shift = injection.shift(index)
    if shift == 0:
        return None
    if injection.kind != DRIFT:
        return Label(kind=injection.kind, required=True)
    reached = shift * injection.magnitude
    threshold = DRIFT_VOLUME_SHIFT if injection.metric == VOLUME else DRIFT_RATE_SHIFT
    return Label(kind=DRIFT, required=reached >= threshold)


def _hour_counts(
    *, profile: SourceProfile, hour: datetime, noise: _Noise, active: list[tuple[Injection, float]]
) -> HourCounts:
    lam = profile.volume * _daily(profile, hour) * _weekly(profile, hour)
    lam *= math.exp(profile.overdispersion * noise.dispersion - profile.overdispersion**2 / 2)
    rhythm = _rate_rhythm(profile, hour)
    geo_p = profile.geocoding + rhythm + 0.01 * noise.geocoding_p
    val_p = profile.validation + rhythm / 2 + 0.01 * noise.validation_p
    for injection, shift in active:
        if injection.metric == VOLUME:
            if injection.kind == DRIFT:
                lam *= 1 - shift * injection.magnitude
            else:
                lam *= injection.magnitude
        elif injection.metric == GEOCODING_SUCCESS_RATE:
            geo_p -= shift * injection.magnitude / 100
        else:
            val_p -= shift * injection.magnitude / 100
    records = _poisson(lam, noise.volume)
    return HourCounts(
        hour=hour,
        geocoding_attempts=records,
        geocoding_successes=_binomial(records, min(max(geo_p, 0.001), 0.999), noise.geocoding),
        validation_attempts=records,
        validation_passes=_binomial(records, min(max(val_p, 0.001), 0.999), noise.validation),
    )


def _uniform(rng: random.Random) -> float:
    return min(max(rng.random(), 1e-12), 1 - 1e-12)


def generate(
    *,
    seed: int = 7,
    days: int = 28,
    sources: Iterable[SourceProfile] = SOURCES,
    kinds: Iterable[str] = KINDS,
    per_kind: int = 2,
    first_day: int = 2,
    start: datetime = DEFAULT_START,
) -> Dataset:
    """``days`` of hourly counts per source with labelled injections of ``kinds``.

    Injections are placed for every kind and then filtered, so data sets with the same seed and
    different ``kinds`` put the same events at the same hours. They start after ``first_day`` and
    also land in the first training window: the detectors must cope with a contaminated history.
    """
    sources = tuple(sources)
    kinds = frozenset(kinds)
    unknown = kinds - set(KINDS)
    if unknown:
        raise ValueError(f"unknown anomaly kinds {sorted(unknown)}; choose from {', '.join(KINDS)}")
    hours = days * 24
    placement = _place(
        rng=random.Random(f"{seed}:placement"), hours=hours, first=first_day * 24, sources=sources, per_kind=per_kind
    )
    injections = tuple(i for i in placement if i.kind in kinds)
    series: dict[str, list[HourCounts]] = {}
    labels: dict[tuple[str, str, datetime], Label] = {}
    for profile in sources:
        rng = random.Random(f"{seed}:{profile.name}")
        mine = [i for i in injections if i.source == profile.name]
        rows = []
        for index in range(hours):
            hour = start + timedelta(hours=index)
            noise = _Noise(
                _uniform(rng), rng.gauss(0, 1), _uniform(rng), _uniform(rng), rng.gauss(0, 1), rng.gauss(0, 1)
            )
            active = [(i, i.shift(index)) for i in mine if i.shift(index)]
            rows.append(_hour_counts(profile=profile, hour=hour, noise=noise, active=active))
            for injection, _ in active:
                label = _label(injection, index)
                if label is not None:
                    labels[(profile.name, injection.metric, hour)] = label
        series[profile.name] = rows
    return Dataset(
        start=start,
        hours=hours,
        seed=seed,
        series=series,
        labels=labels,
        injections=injections,
        description={
            "seed": seed,
            "days": days,
            "sources": [p.name for p in sources],
            "kinds": sorted(kinds),
            "injections": len(injections),
        },
    )
