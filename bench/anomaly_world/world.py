"""One seed's world: N sources × D days of quarter-hour counts, with labelled incidents.

    world = build_world(seed=1)
    counts = source_counts(world=world, source=3)             # every incident of source 3
    counts = source_counts(world=world, source=3, include=frozenset())  # background only

``source_counts`` returns one entry per UTC hour: four quarter-hour tuples
``(geocoding_attempts, geocoding_successes, validation_attempts, validation_passes)``. Records that
fail geocoding are not validated, so validation attempts equal geocoding successes.

Each (seed, source, hour) draws from its own generator, so a data set with a subset of the incidents
(the per-kind sets) has exactly the same counts as the mixed set outside the incidents' hours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bench.anomaly_world.incidents import draw_incidents, effects
from bench.anomaly_world.labels import GEOCODING, KINDS, VALIDATION, VOLUME, Event
from bench.anomaly_world.sampling import beta_rate, binomial, gamma_factor, poisson, split, stream
from bench.anomaly_world.sources import QUARTERS, Background, Profile, background, draw_holidays, draw_profiles

# Mid-October: the Levant, Egypt and Ukraine leave summer time inside the first 45 days.
DEFAULT_START = datetime(2026, 10, 5, tzinfo=UTC)
DEFAULT_SOURCES = 30
DEFAULT_DAYS = 45
LATE_GUARD_HOURS = 3  # no late-report pair within this many hours of an incident (labels stay clean)

Quarter = tuple[int, int, int, int]


@dataclass(frozen=True, kw_only=True)
class World:
    seed: int
    start: datetime
    days: int
    profiles: list[Profile]
    backgrounds: list[Background]
    holidays: dict[str, dict]
    events: list[Event]
    late: dict[int, dict[int, float]]  # source → {hour: share of its records delivered on time}

    @property
    def hours(self) -> int:
        return self.days * 24

    def events_of(self, source: int) -> list[Event]:
        name = self.profiles[source].name
        return [e for e in self.events if e.source == name]

    def hour_start(self, hour: int) -> datetime:
        return self.start + timedelta(hours=hour)


def build_world(
    *,
    seed: int,
    sources: int = DEFAULT_SOURCES,
    days: int = DEFAULT_DAYS,
    start: datetime = DEFAULT_START,
    kinds: tuple[str, ...] = KINDS,
) -> World:
    hours = days * 24
    profiles = draw_profiles(seed=seed, sources=sources, hours=hours)
    holidays = draw_holidays(seed=seed, countries={p.country for p in profiles}, first=start.date(), days=days)
    backgrounds = [background(profile=p, start=start, hours=hours, holidays=holidays[p.country]) for p in profiles]
    events = draw_incidents(
        seed=seed, profiles=profiles, backgrounds=backgrounds, start=start, hours=hours, kinds=kinds
    )
    late = {}
    for p in profiles:
        busy = set()
        for e in events:
            if e.source == p.name:
                first = int((e.start - start).total_seconds() // 3600)
                last = math.ceil((e.end - start).total_seconds() / 3600)
                busy.update(range(first - LATE_GUARD_HOURS, last + LATE_GUARD_HOURS))
        late[p.index] = _late_hours(seed=seed, profile=p, hours=hours, busy=busy)
    return World(
        seed=seed,
        start=start,
        days=days,
        profiles=profiles,
        backgrounds=backgrounds,
        holidays=holidays,
        events=events,
        late=late,
    )


def _late_hours(*, seed: int, profile: Profile, hours: int, busy: set[int]) -> dict[int, float]:
    """Hours whose records partly (or wholly) arrive in the next hour; the pair sums to normal."""
    rng = stream(seed, 5, profile.index)
    expected = profile.late_per_week * hours / (7 * 24)
    count = poisson(rng, expected)
    late: dict[int, float] = {}
    for _ in range(count):
        hour = rng.randrange(1, hours - 1)
        if hour in busy or hour + 1 in busy or hour - 1 in late or hour + 1 in late or hour in late:
            continue
        late[hour] = 0.0 if rng.random() < 0.35 else rng.uniform(0.05, 0.6)
    return late


def source_counts(*, world: World, source: int, include: frozenset[int] | None = None) -> list[list[Quarter]]:
    """The delivered counts of one source, per hour and quarter, with the incidents ``include`` names."""
    profile = world.profiles[source]
    bg = world.backgrounds[source]
    chosen = [e for e in world.events_of(source) if include is None or e.id in include]
    volume_factor: dict[int, float] = {}
    rate_change: dict[str, dict[int, float]] = {GEOCODING: {}, VALIDATION: {}}
    for event in chosen:
        for metric, per_quarter in effects(event=event, start=world.start).items():
            for q, value in per_quarter.items():
                if metric == VOLUME:
                    volume_factor[q] = volume_factor.get(q, 1.0) * value
                else:
                    rate_change[metric][q] = rate_change[metric].get(q, 0.0) + value
    out: list[list[Quarter]] = []
    for hour in range(world.hours):
        rng = stream(world.seed, 6, source, hour)
        base = hour * QUARTERS
        lam = [bg.volume[base + q] * volume_factor.get(base + q, 1.0) for q in range(QUARTERS)]
        g = gamma_factor(rng, profile.shape)
        if profile.batch_quarter is None:
            arrived = [poisson(rng, g * lam[q] * profile.arrival[q]) for q in range(QUARTERS)]
        else:
            arrived = [0] * QUARTERS
            total = poisson(rng, g * sum(lam))
            if rng.random() < 0.85:
                arrived[profile.batch_quarter] = total
            else:  # the batch came in two parts, one a quarter later (or earlier at the end of the hour)
                other = profile.batch_quarter + 1 if profile.batch_quarter < QUARTERS - 1 else profile.batch_quarter - 1
                first, second = split(rng, total, (1.0, 1.0))
                arrived[profile.batch_quarter] = first
                arrived[other] = second
        p_geo = beta_rate(rng, bg.geocoding[hour], profile.geocoding_concentration)
        p_val = beta_rate(rng, bg.validation[hour], profile.validation_concentration)
        quarters: list[Quarter] = []
        for q in range(QUARTERS):
            pg = min(max(p_geo + rate_change[GEOCODING].get(base + q, 0.0), 0.0), 1.0)
            pv = min(max(p_val + rate_change[VALIDATION].get(base + q, 0.0), 0.0), 1.0)
            successes = binomial(rng, arrived[q], pg)
            quarters.append((arrived[q], successes, successes, binomial(rng, successes, pv)))
        out.append(quarters)
    _deliver_late(world=world, source=source, counts=out)
    return out


def _deliver_late(*, world: World, source: int, counts: list[list[Quarter]]) -> None:
    """Move the late share of each late hour's records into the next hour (a catch-up batch)."""
    profile = world.profiles[source]
    landing = profile.batch_quarter if profile.batch_quarter is not None else 0
    for hour, on_time in sorted(world.late[source].items()):
        rng = stream(world.seed, 7, source, hour)
        moved = [0, 0, 0]  # failed geocoding, geocoded but invalid, valid
        for q, (ga, gs, _va, vp) in enumerate(counts[hour]):
            kept = [binomial(rng, n, on_time) for n in (ga - gs, gs - vp, vp)]
            for i, n in enumerate((ga - gs, gs - vp, vp)):
                moved[i] += n - kept[i]
            counts[hour][q] = (sum(kept), kept[1] + kept[2], kept[1] + kept[2], kept[2])
        ga, gs, va, vp = counts[hour + 1][landing]
        counts[hour + 1][landing] = (ga + sum(moved), gs + moved[1] + moved[2], va + moved[1] + moved[2], vp + moved[2])


def hour_totals(quarters: list[Quarter], upto: int = QUARTERS) -> Quarter:
    """Sum of the first ``upto`` quarters of one hour."""
    ga = gs = va = vp = 0
    for a, b, c, d in quarters[:upto]:
        ga += a
        gs += b
        va += c
        vp += d
    return ga, gs, va, vp
