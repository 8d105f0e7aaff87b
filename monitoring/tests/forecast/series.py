"""Synthetic hourly counts for the forecaster's tests: a daily cycle in local time, a rate that may slide.

Deterministic (a seeded generator) and cheap: a few hundred hours feed a forecaster in well under a
second.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from monitoring.anomaly.detector import HourCounts
from monitoring.forecast import ForecastConfig, SourceForecaster, make_forecaster

START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
HOUR = timedelta(hours=1)


def daily(local_hour: float, *, peak: float = 14.0, mean: float = 200.0, swing: float = 0.6) -> float:
    """Expected records in a local hour: a cosine day peaking at ``peak``."""
    return mean * (1 + swing * math.cos(2 * math.pi * (local_hour - peak) / 24))


def _binomial(rng: random.Random, n: int, p: float) -> int:
    if n <= 0:
        return 0
    sd = math.sqrt(n * p * (1 - p))
    return min(max(round(n * p + rng.gauss(0.0, sd)), 0), n)


def hours(
    count: int,
    *,
    seed: int = 1,
    tz: str = "UTC",
    volume: Callable[[int, float], float] | None = None,
    geocoding: Callable[[int], float] | None = None,
    validation: Callable[[int], float] | None = None,
    noise: float = 0.05,
    start: datetime = START,
) -> list[HourCounts]:
    """``count`` closed hours from ``start``: ``volume(i, local_hour)`` expected records (local to ``tz``),
    ``geocoding(i)`` and ``validation(i)`` the rates as fractions; counts with ``noise`` relative volume
    noise and binomial rates."""
    rng = random.Random(seed)
    zone = ZoneInfo(tz)
    volume = volume or (lambda i, local: daily(local))
    geocoding = geocoding or (lambda i: 0.93)
    validation = validation or (lambda i: 0.95)
    out = []
    for i in range(count):
        at = (start + i * HOUR).astimezone(zone)
        local = at.hour + at.minute / 60
        expected = volume(i, local)
        n = max(round(expected * (1 + rng.gauss(0.0, noise))), 0) if expected > 0 else 0
        geo = _binomial(rng, n, min(max(geocoding(i), 0.0), 1.0))
        val = _binomial(rng, geo, min(max(validation(i), 0.0), 1.0))
        out.append(
            HourCounts(
                hour=start + i * HOUR,
                geocoding_attempts=n,
                geocoding_successes=geo,
                validation_attempts=geo,
                validation_passes=val,
            )
        )
    return out


def fed(counts: list[HourCounts], *, tz: str = "UTC", config: ForecastConfig | None = None) -> SourceForecaster:
    forecaster = make_forecaster(tz=tz, config=config)
    for c in counts:
        forecaster.observe(c)
    return forecaster
