"""A labelled development world for the streaming detector (deterministic for a seed).

Each source gets its own rhythm, in its own time zone: a daily cycle peaking at a local hour, a
Fri/Sat or Sat/Sun weekend, daylight-saving changes where the zone has them, negative-binomial
volumes from about 10 to a few thousand records an hour, beta-binomial geocoding and validation
rates. On top come what a live pipeline shows without anything being broken:

- news bursts (×1.2-1.9 for 12-48 h), public holidays (a local day at ×0.5-0.8), slow drifts
  (±30 % over two weeks);
- late batches: some sources deliver part or all of an hour in the next hour;
- single-hour glitches: one hour's volume ×0.5-0.7 or a rate 2-6 points lower;

and labelled incidents (``KINDS``), at least two days apart per source:

- ``level_drop``: volume ×0.05-0.4 for 2-12 h; ``outage``: nothing for 1-12 h;
- ``spike``: a duplicate flood, ×3-6 for 1-4 h;
- ``rate_drop``: geocoding or validation 5-30 points lower for 1-12 h;
- ``validation_step``: validation 5-15 points lower for 12-48 h (a stricter rule shipped and reverted);
- ``degradation``: over 24-48 h, after a 4-hour slide, geocoding 5-15 points lower or volume ×0.25-0.45 (a shallower
  day-long volume dip is what a public holiday looks like).

The harness (:mod:`monitoring.anomaly.evaluation`) also asks the detector about each hour while it
fills: each record of an hour arrives at a uniform moment in it, so the counts at a fraction are a
binomial thinning of the hour's counts (:func:`partial_counts`).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from monitoring.anomaly.detector import GEOCODING_SUCCESS_RATE, VALIDATION_PASS_RATE, VOLUME, HourCounts

LEVEL_DROP = "level_drop"
OUTAGE = "outage"
SPIKE = "spike"
RATE_DROP = "rate_drop"
VALIDATION_STEP = "validation_step"
DEGRADATION = "degradation"
KINDS = (LEVEL_DROP, OUTAGE, SPIKE, RATE_DROP, VALIDATION_STEP, DEGRADATION)
# Early March: the European and Levantine clock changes fall inside a 45-day run.
DEFAULT_START = datetime(2025, 3, 3, tzinfo=UTC)
ZONES = (
    ("UTC", (5, 6)),
    ("Europe/Kyiv", (5, 6)),
    ("Asia/Damascus", (4, 5)),
    ("Asia/Jerusalem", (4, 5)),
    ("Africa/Khartoum", (4, 5)),
    ("Asia/Kabul", (3, 4)),
    ("America/Bogota", (5, 6)),
    ("Europe/Paris", (5, 6)),
)


@dataclass(frozen=True, kw_only=True)
class Profile:
    name: str
    tz: str
    weekend: tuple[int, int]
    volume: float
    amplitude: float
    peak: int  # local hour
    weekend_factor: float
    dispersion: float  # negative-binomial: variance = mean + dispersion × mean²
    geocoding: float
    validation: float
    rho: float  # beta-binomial intra-hour correlation
    late_probability: float


@dataclass(frozen=True, kw_only=True)
class Incident:
    source: str
    kind: str
    metric: str
    start: int  # hour index
    length: int
    magnitude: float  # volume factor, or rate points removed

    @property
    def direction(self) -> str:
        return "spike" if self.kind == SPIKE else "drop"


@dataclass(frozen=True, kw_only=True)
class World:
    start: datetime
    hours: int
    seed: int
    profiles: tuple[Profile, ...]
    series: dict[str, list[HourCounts]]
    incidents: tuple[Incident, ...]
    description: dict[str, object] = field(default_factory=dict)


def _profile(rng: random.Random, index: int) -> Profile:
    tz, weekend = rng.choice(ZONES)
    return Profile(
        name=f"source-{index:02d}",
        tz=tz,
        weekend=weekend,
        volume=math.exp(rng.uniform(math.log(10), math.log(2500))),
        amplitude=rng.uniform(0.3, 0.8),
        peak=rng.randint(9, 20),
        weekend_factor=rng.uniform(0.4, 1.0),
        dispersion=rng.uniform(0.01, 0.05),
        geocoding=rng.uniform(0.75, 0.95),
        validation=rng.uniform(0.85, 0.97),
        rho=math.exp(rng.uniform(math.log(1e-4), math.log(3e-3))),
        late_probability=rng.choice((0.0, 0.0, 0.01, 0.03)),
    )


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 60:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    threshold, k, product = math.exp(-lam), 0, rng.random()
    while product > threshold:
        k += 1
        product *= rng.random()
    return k


def _negative_binomial(rng: random.Random, mean: float, dispersion: float) -> int:
    if mean <= 0:
        return 0
    shape = 1 / dispersion
    return _poisson(rng, rng.gammavariate(shape, mean / shape))


def _binomial(rng: random.Random, n: int, p: float) -> int:
    p = min(max(p, 0.0), 1.0)
    if n <= 0:
        return 0
    if n > 60:
        sd = math.sqrt(n * p * (1 - p))
        return min(n, max(0, round(rng.gauss(n * p, sd))))
    return sum(1 for _ in range(n) if rng.random() < p)


def _beta_binomial(rng: random.Random, n: int, p: float, rho: float) -> int:
    p = min(max(p, 0.001), 0.999)
    total = 1 / rho - 1  # alpha + beta
    return _binomial(rng, n, rng.betavariate(p * total, (1 - p) * total))


def _place(rng: random.Random, *, source: str, hours: int, first: int, kinds: tuple[str, ...]) -> list[Incident]:
    placed: list[Incident] = []
    taken: list[tuple[int, int]] = []
    for kind in kinds:
        metric = VOLUME
        if kind == LEVEL_DROP:
            length, magnitude = rng.randint(2, 12), rng.uniform(0.05, 0.4)
        elif kind == OUTAGE:
            length, magnitude = rng.randint(1, 12), 0.0
        elif kind == SPIKE:
            length, magnitude = rng.randint(1, 4), rng.uniform(3.0, 6.0)
        elif kind == RATE_DROP:
            metric = rng.choice((GEOCODING_SUCCESS_RATE, VALIDATION_PASS_RATE))
            length, magnitude = rng.randint(1, 12), rng.uniform(5.0, 30.0)
        elif kind == VALIDATION_STEP:
            metric, length, magnitude = VALIDATION_PASS_RATE, rng.randint(12, 48), rng.uniform(5.0, 15.0)
        else:
            metric = rng.choice((GEOCODING_SUCCESS_RATE, VOLUME))
            length = rng.randint(24, 48)
            magnitude = rng.uniform(0.25, 0.45) if metric == VOLUME else rng.uniform(5.0, 15.0)
        for _ in range(200):
            start = rng.randrange(first, hours - length - 1)
            if all(start + length + 48 <= s or e + 48 <= start for s, e in taken):
                taken.append((start, start + length))
                placed.append(
                    Incident(source=source, kind=kind, metric=metric, start=start, length=length, magnitude=magnitude)
                )
                break
    return placed


def _effect(incident: Incident, index: int) -> float:
    """How much of the incident's magnitude applies at ``index`` (0 outside it)."""
    offset = index - incident.start
    if not 0 <= offset < incident.length:
        return 0.0
    if incident.kind == DEGRADATION:
        return min(1.0, (offset + 1) / 4)
    return 1.0


def _nuisances(rng: random.Random, *, hours: int) -> dict[str, list]:
    bursts = [(rng.randrange(hours), rng.randint(12, 48), rng.uniform(1.2, 1.9)) for _ in range(rng.randint(1, 3))]
    holidays = [rng.randrange(hours // 24) for _ in range(rng.randint(0, 2))]
    holiday_factor = rng.uniform(0.5, 0.8)
    drift = rng.uniform(-0.3, 0.3)
    drift_start = rng.randrange(hours)
    return {"bursts": bursts, "holidays": holidays, "holiday": [holiday_factor], "drift": [drift, drift_start]}


def _series(*, seed: int, profile: Profile, start: datetime, hours: int, incidents: list[Incident]) -> list[HourCounts]:
    zone = ZoneInfo(profile.tz)
    nuisance = _nuisances(random.Random(f"{seed}:nuisance:{profile.name}"), hours=hours)
    rows: list[HourCounts] = []
    carry = (0, 0, 0)  # records (and their successes, passes) delivered an hour late
    for index in range(hours):
        # Each hour draws from its own stream: an incident changes the hours it touches and no others.
        rng = random.Random(f"{seed}:{profile.name}:{index}")
        hour = start + timedelta(hours=index)
        local = hour.astimezone(zone)
        mean = profile.volume * (1 + profile.amplitude * math.cos(2 * math.pi * (local.hour - profile.peak) / 24))
        if local.weekday() in profile.weekend:
            mean *= profile.weekend_factor
        day = (local.date() - start.date()).days
        if day in nuisance["holidays"]:
            mean *= nuisance["holiday"][0]
        for at, length, factor in nuisance["bursts"]:
            if at <= index < at + length:
                mean *= factor
        drift, drift_start = nuisance["drift"]
        mean *= 1 + drift * min(max((index - drift_start) / (14 * 24), 0.0), 1.0)
        rhythm = 0.015 * math.cos(2 * math.pi * (local.hour - profile.peak) / 24)
        geo, val = profile.geocoding + rhythm, profile.validation + rhythm / 2
        glitch = rng.random() < 0.01
        if glitch:
            which = rng.randrange(3)
            if which == 0:
                mean *= rng.uniform(0.5, 0.7)
            elif which == 1:
                geo -= rng.uniform(0.02, 0.06)
            else:
                val -= rng.uniform(0.02, 0.06)
        for incident in incidents:
            effect = _effect(incident, index)
            if not effect:
                continue
            if incident.metric == VOLUME:
                mean *= 1 - effect * (1 - incident.magnitude)
            elif incident.metric == GEOCODING_SUCCESS_RATE:
                geo -= effect * incident.magnitude / 100
            else:
                val -= effect * incident.magnitude / 100
        records = _negative_binomial(rng, mean, profile.dispersion)
        successes = _beta_binomial(rng, records, geo, profile.rho)
        passes = _beta_binomial(rng, records, val, profile.rho)
        # A late batch: part of this hour's records is delivered with the next hour's.
        if rng.random() < profile.late_probability:
            late = rng.uniform(0.5, 1.0)
            moved = (round(records * late), round(successes * late), round(passes * late))
        else:
            moved = (0, 0, 0)
        records, successes, passes = (
            records - moved[0] + carry[0],
            successes - moved[1] + carry[1],
            passes - moved[2] + carry[2],
        )
        carry = moved
        rows.append(
            HourCounts(
                hour=hour,
                geocoding_attempts=records,
                geocoding_successes=successes,
                validation_attempts=records,
                validation_passes=passes,
            )
        )
    return rows


def generate(
    *, seed: int = 7, days: int = 45, sources: int = 12, kinds: tuple[str, ...] = KINDS, first_day: int = 8
) -> World:
    """``days`` of hourly counts for ``sources`` sources, each with one incident of every kind in ``kinds``.

    Incidents are placed for every kind and then filtered, and the background draws from its own
    random stream, so worlds with the same seed and different ``kinds`` share the same background and
    the same incident positions: a kind's false alarms are comparable with the clean world's.
    """
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown incident kinds {sorted(unknown)}; choose from {', '.join(KINDS)}")
    hours = days * 24
    profiles = tuple(_profile(random.Random(f"{seed}:profile:{i}"), i) for i in range(sources))
    series, incidents = {}, []
    for profile in profiles:
        placed = _place(
            random.Random(f"{seed}:place:{profile.name}"),
            source=profile.name,
            hours=hours,
            first=first_day * 24,
            kinds=KINDS,
        )
        mine = [i for i in placed if i.kind in kinds]
        incidents.extend(mine)
        series[profile.name] = _series(seed=seed, profile=profile, start=DEFAULT_START, hours=hours, incidents=mine)
    return World(
        start=DEFAULT_START,
        hours=hours,
        seed=seed,
        profiles=profiles,
        series=series,
        incidents=tuple(incidents),
        description={"seed": seed, "days": days, "sources": sources, "kinds": list(kinds), "incidents": len(incidents)},
    )


def partial_counts(counts: HourCounts, *, fraction: float, rng: random.Random) -> HourCounts:
    """The counts of ``counts.hour`` seen after ``fraction`` of it: each record arrived at a uniform moment."""
    records = _binomial(rng, counts.geocoding_attempts, fraction)
    share = records / counts.geocoding_attempts if counts.geocoding_attempts else 0.0
    return HourCounts(
        hour=counts.hour,
        geocoding_attempts=records,
        geocoding_successes=min(records, round(counts.geocoding_successes * share)),
        validation_attempts=min(records, counts.validation_attempts),
        validation_passes=min(records, round(counts.validation_passes * share)),
    )
