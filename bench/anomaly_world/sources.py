"""Per-source realism: time zone, local daily and weekly cycle, level drift, noise, batch habits.

Every parameter is drawn per source from a range (never fixed), from the seed alone. The expected
volume is kept per quarter-hour (partial hours are judged on quarters), the expected rates per hour.
Unlabelled normal oddities that change the expectation live here too: public holidays (per country),
news-cycle bursts and single-hour glitches. Late reports change the delivered counts, not the
expectation, and are applied in :mod:`.world`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from bench.anomaly_world.sampling import stream

QUARTERS = 4
_LOCAL_QUARTERS = 24 * QUARTERS

# (IANA zone, local weekend weekdays with Monday = 0, country). The DST zones (Kyiv, Beirut, Cairo,
# Jerusalem, Gaza) change clocks in late October; Kabul and Tehran sit on half-hour offsets.
ZONES: tuple[tuple[str, tuple[int, ...], str], ...] = (
    ("Europe/Kyiv", (5, 6), "UA"),
    ("Africa/Cairo", (4, 5), "EG"),
    ("Asia/Jerusalem", (4, 5), "IL"),
    ("Asia/Beirut", (5, 6), "LB"),
    ("Asia/Kabul", (3, 4), "AF"),
    ("Asia/Damascus", (4, 5), "SY"),
    ("Asia/Baghdad", (4, 5), "IQ"),
    ("Africa/Khartoum", (4, 5), "SD"),
    ("Africa/Lagos", (5, 6), "NG"),
    ("Europe/Istanbul", (5, 6), "TR"),
    ("Asia/Gaza", (4, 5), "PS"),
    ("Asia/Tehran", (4,), "IR"),
    ("Asia/Aden", (4, 5), "YE"),
    ("Africa/Tripoli", (4, 5), "LY"),
    ("Africa/Mogadishu", (3, 4), "SO"),
)
_ALWAYS = 5  # the first zones (DST and a half-hour offset) are always present when there are ≥ 5 sources


@dataclass(frozen=True, kw_only=True)
class Profile:
    """What makes one source itself. Volumes are records per hour; rates are fractions."""

    index: int
    name: str
    tz: str
    country: str
    weekend: tuple[int, ...]
    level: float  # mean records per hour on a weekday before drift
    shape: float  # gamma shape of the hourly multiplier: lower = more overdispersed
    daily: tuple[float, ...]  # 96 local quarter-hour factors, mean 1
    weekday: tuple[float, ...]  # 7 local weekday factors (weekend days low)
    drift: tuple[float, ...]  # amplitude, period (days), phase, trend over the range (log scale)
    geocoding: float
    validation: float
    geocoding_concentration: float  # beta concentration: lower = more hour-to-hour rate noise
    validation_concentration: float
    rate_daily: tuple[float, float]  # amplitude (fraction) and local peak hour of a mild rate cycle
    rate_drift: tuple[float, float, float]  # amplitude, period (days), phase
    batch_quarter: int | None  # None: streams through the hour; else posts one batch in that quarter
    arrival: tuple[float, ...]  # streaming sources: relative arrival per quarter
    late_per_week: float
    bursts: tuple[tuple[int, int, float], ...] = field(default=())  # (start hour, hours, factor)
    glitches: tuple[tuple[int, str, float], ...] = field(default=())  # (hour, what, size)


def _circular(distance: float) -> float:
    return min(distance % 24.0, 24.0 - distance % 24.0)


def _daily_profile(rng: random.Random) -> tuple[float, ...]:
    """Night trough, a morning and an evening peak in local time, each drawn per source."""
    floor = rng.uniform(0.08, 0.45)
    peaks = [
        (rng.uniform(8.0, 12.5), rng.uniform(1.8, 4.0), 1.0),
        (rng.uniform(16.5, 22.0), rng.uniform(1.5, 3.5), rng.uniform(0.3, 1.1)),
    ]
    raw = []
    for q in range(_LOCAL_QUARTERS):
        t = (q + 0.5) / QUARTERS
        bump = sum(w * math.exp(-0.5 * (_circular(t - mu) / width) ** 2) for mu, width, w in peaks)
        raw.append(floor + bump)
    mean = sum(raw) / len(raw)
    return tuple(v / mean for v in raw)


def _zones(rng: random.Random, count: int) -> list[tuple[str, tuple[int, ...], str]]:
    chosen = list(ZONES[: min(_ALWAYS, count)])
    while len(chosen) < count:
        chosen.append(rng.choice(ZONES))
    rng.shuffle(chosen)
    return chosen


def draw_profiles(*, seed: int, sources: int, hours: int) -> list[Profile]:
    zones = _zones(stream(seed, 1), sources)
    profiles = []
    for index, (tz, weekend, country) in enumerate(zones):
        rng = stream(seed, 2, index)
        weekend_factor = rng.uniform(0.45, 0.9)
        weekday = tuple(weekend_factor if d in weekend else rng.uniform(0.93, 1.07) for d in range(7))
        batch = rng.random() < 0.3
        arrival = tuple(rng.uniform(0.85, 1.15) for _ in range(QUARTERS))
        bursts = []
        for _ in range(rng.choice((0, 1, 1, 2, 3))):
            length = rng.randint(24, 48)
            bursts.append((rng.randrange(0, max(hours - length, 1)), length, rng.uniform(1.2, 1.8)))
        glitches = []
        for _ in range(rng.choice((0, 1, 2, 2, 3, 4))):
            what = rng.choice(("volume", "volume", "geocoding", "validation"))
            if what == "volume":
                size = rng.choice((rng.uniform(0.6, 0.8), rng.uniform(1.3, 1.6)))
            else:
                size = -rng.uniform(0.03, 0.08)
            glitches.append((rng.randrange(0, hours), what, size))
        profiles.append(
            Profile(
                index=index,
                name=f"s{index:02d}-{tz.split('/')[-1].lower()}",
                tz=tz,
                country=country,
                weekend=weekend,
                level=math.exp(rng.uniform(math.log(10.0), math.log(2500.0))),
                shape=rng.uniform(6.0, 60.0),
                daily=_daily_profile(rng),
                weekday=weekday,
                drift=(
                    rng.uniform(0.0, 0.15),
                    rng.uniform(8.0, 40.0),
                    rng.uniform(0, 2 * math.pi),
                    rng.uniform(-0.25, 0.25),
                ),
                geocoding=rng.uniform(0.85, 0.98),
                validation=rng.uniform(0.80, 0.99),
                geocoding_concentration=math.exp(rng.uniform(math.log(80.0), math.log(3000.0))),
                validation_concentration=math.exp(rng.uniform(math.log(80.0), math.log(3000.0))),
                rate_daily=(rng.uniform(0.0, 0.02), rng.uniform(0.0, 24.0)),
                rate_drift=(rng.uniform(0.0, 0.015), rng.uniform(10.0, 40.0), rng.uniform(0, 2 * math.pi)),
                batch_quarter=rng.randrange(QUARTERS) if batch else None,
                arrival=arrival,
                late_per_week=rng.uniform(0.5, 2.0) if batch else rng.uniform(0.0, 0.3),
                bursts=tuple(bursts),
                glitches=tuple(glitches),
            )
        )
    return profiles


def draw_holidays(*, seed: int, countries: set[str], first: date, days: int) -> dict[str, dict[date, float]]:
    """At most one public holiday per country in the range (a third of them two days long).

    The value is the holiday's staffing relative to a weekend (0.8–1.0): newsrooms and scrapers'
    sources run on weekend staffing, so a holiday looks like an extra weekend day in local time.
    """
    holidays: dict[str, dict[date, float]] = {}
    for country in sorted(countries):
        rng = stream(seed, 3, sum(ord(c) * 31**i for i, c in enumerate(country)))
        chosen: dict[date, float] = {}
        if rng.random() < 0.4:
            day = first + timedelta(days=rng.randrange(2, days))
            chosen[day] = rng.uniform(0.8, 1.0)
            if rng.random() < 0.33:
                chosen[day + timedelta(days=1)] = chosen[day]
        holidays[country] = chosen
    return holidays


@dataclass(frozen=True, kw_only=True)
class Background:
    """The expectation without incidents: volume per quarter, rates per hour, local calendar per hour."""

    volume: list[float]  # expected records per quarter (len = 4 × hours)
    geocoding: list[float]  # expected success probability per hour
    validation: list[float]
    local_hour: list[float]  # local clock hour of each UTC hour's start (for tests and reports)
    local_date: list[date]


def background(*, profile: Profile, start: datetime, hours: int, holidays: dict[date, float]) -> Background:
    zone = ZoneInfo(profile.tz)
    weekend = min(profile.weekday)
    amplitude, period, phase, trend = profile.drift
    r_amp, r_period, r_phase = profile.rate_drift
    d_amp, d_peak = profile.rate_daily
    burst = [1.0] * hours
    for first, length, factor in profile.bursts:
        ramp = min(6, length // 4)
        for h in range(first, min(first + length, hours)):
            edge = min(h - first + 1, first + length - h, ramp) / ramp if ramp else 1.0
            burst[h] *= 1.0 + (factor - 1.0) * edge
    volume_glitch = [1.0] * hours
    rate_glitch = {"geocoding": [0.0] * hours, "validation": [0.0] * hours}
    for hour, what, size in profile.glitches:
        if what == "volume":
            volume_glitch[hour] *= size
        else:
            rate_glitch[what][hour] += size
    volume: list[float] = []
    geocoding: list[float] = []
    validation: list[float] = []
    local_hour: list[float] = []
    local_date: list[date] = []
    for h in range(hours):
        utc = start + timedelta(hours=h)
        days = h / 24.0
        level = profile.level * math.exp(
            amplitude * math.sin(2 * math.pi * days / period + phase) + trend * h / max(hours, 1)
        )
        common = level * burst[h] * volume_glitch[h] / QUARTERS
        for q in range(QUARTERS):
            local = (utc + timedelta(minutes=15 * q)).astimezone(zone)
            slot = local.hour * QUARTERS + local.minute // 15
            factor = profile.weekday[local.weekday()]
            if local.date() in holidays:  # a weekend day's level, unless the day is already a weekend
                factor = min(factor, weekend * holidays[local.date()])
            volume.append(common * profile.daily[slot] * factor)
            if q == 0:
                local_hour.append(local.hour + local.minute / 60.0)
                local_date.append(local.date())
        cycle = d_amp * math.cos(2 * math.pi * (local_hour[-1] - d_peak) / 24.0)
        slow = r_amp * math.sin(2 * math.pi * days / r_period + r_phase)
        geocoding.append(min(max(profile.geocoding + cycle + slow + rate_glitch["geocoding"][h], 0.02), 0.998))
        validation.append(min(max(profile.validation + slow / 2 + rate_glitch["validation"][h], 0.02), 0.998))
    return Background(
        volume=volume, geocoding=geocoding, validation=validation, local_hour=local_hour, local_date=local_date
    )
