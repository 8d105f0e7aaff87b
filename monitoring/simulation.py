"""Realistic pipeline traffic for demos and manual testing, written through the normal services.

Each source scrapes once per step, then reports how many records it geocoded and validated.
Scenarios bend one source away from normal so a newcomer sees every status:

- ``normal``: every source healthy, with a daily volume cycle and noise;
- ``failing-scraper``: the scraper of one source fails most runs for the last hours and goes stale;
- ``geocoding-outage``: one source's geocoder succeeds for ~20 % of records for the last hours;
- ``volume-drop``: one source delivers a tenth of its usual volume for the last hours.

With ``recover_hours`` the incident ends that long before ``now`` and normal traffic follows, so
the history is written in two phases: the alerts it fires can be evaluated at the incident's end,
and seen to resolve at ``now``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitoring.models import PipelineRun
from monitoring.services.metrics import MetricInput, record_metrics
from monitoring.services.runs import record_run

SCENARIOS = ("normal", "failing-scraper", "geocoding-outage", "volume-drop")
# Conflict-event feeds of different size and quality: (records per hour, geocoding rate, validation rate).
# Normal rates sit at least 5 points above the default alert levels (geocoding 85 %, validation
# 90 %): a healthy hour must not page at any time of day, whatever the volume.
SOURCES = {
    "acled": (420, 0.95, 0.97),
    "reliefweb": (180, 0.93, 0.96),
    "liveuamap": (650, 0.92, 0.95),
    "gdelt": (1500, 0.91, 0.95),
    "local-news": (90, 0.94, 0.97),
}
# An hour's rate strays at most this far from the source's normal rate. Per-record coin flips
# (binomial noise) would swing a 50-record hour by ±7 points and trip the 5-point drop rules on
# healthy traffic; the real detector's floors already allow for that noise.
RATE_JITTER = 0.01
# Expected failed scrapes per source and hour in normal traffic, whatever the step: a fixed
# per-run probability would make the failed-runs rules fire on healthy traffic at short steps.
NORMAL_FAILURES_PER_HOUR = 0.01
FAILING_SCRAPER_FAILURE_RATE = 0.85
OUTAGE_GEOCODING_RATE = 0.2
VOLUME_DROP_FACTOR = 0.1
# How long an incident lasts (it ends at ``now``, or ``recover_hours`` before), and which source it hits.
INCIDENT_HOURS = 6
INCIDENT_SOURCE = {"failing-scraper": "liveuamap", "geocoding-outage": "gdelt", "volume-drop": "reliefweb"}


@dataclass(frozen=True)
class Tick:
    source: str
    at: datetime
    scrape_ok: bool
    items: int
    geocoded: int
    validated: int


@dataclass(frozen=True)
class Phase:
    """A stretch of history written in one go; alerts are meant to be evaluated at ``ends_at``."""

    name: str  # "incident", "recovery" or the scenario itself when there is no recovery
    ends_at: datetime
    runs: int
    metrics: int


def check_arguments(*, scenario: str, hours: float, recover_hours: float) -> None:
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")
    if recover_hours < 0 or (recover_hours and recover_hours >= hours):
        raise ValueError("recover_hours must be at least 0 and shorter than the history (hours)")
    if recover_hours and scenario not in INCIDENT_SOURCE:
        raise ValueError(f"scenario {scenario!r} has no incident to recover from")


def _count(items: int, normal_rate: float, rng: random.Random) -> int:
    return round(items * min(1.0, normal_rate + rng.uniform(-RATE_JITTER, RATE_JITTER)))


def _ticks(
    *, scenario: str, start: datetime, steps: int, step: timedelta, incident_end: datetime, rng: random.Random
) -> list[Tick]:
    incident_source = INCIDENT_SOURCE.get(scenario)
    incident_start = incident_end - timedelta(hours=INCIDENT_HOURS)
    normal_failure = min(1.0, NORMAL_FAILURES_PER_HOUR * step.total_seconds() / 3600)
    ticks = []
    for i in range(steps):
        at = start + step * (i + 1)
        daily = 1 + 0.35 * math.sin(2 * math.pi * (at.hour - 6) / 24)
        for source, (volume, geo_p, val_p) in SOURCES.items():
            hit = source == incident_source and incident_start <= at <= incident_end
            failure = FAILING_SCRAPER_FAILURE_RATE if hit and scenario == "failing-scraper" else normal_failure
            scrape_ok = rng.random() >= failure
            items = max(0, round(volume * daily * step.total_seconds() / 3600 * rng.uniform(0.85, 1.15)))
            if hit and scenario == "volume-drop":
                items = round(items * VOLUME_DROP_FACTOR)
            if not scrape_ok:
                items = 0
            if hit and scenario == "geocoding-outage":
                geocoded = sum(1 for _ in range(items) if rng.random() < OUTAGE_GEOCODING_RATE)
            else:
                geocoded = _count(items, geo_p, rng)
            ticks.append(Tick(source, at, scrape_ok, items, geocoded, _count(items, val_p, rng)))
    return ticks


def _write(ticks: list[Tick], *, step: timedelta) -> tuple[int, int]:
    for tick in ticks:
        record_run(
            source=tick.source,
            stage=PipelineRun.Stage.SCRAPE,
            status=PipelineRun.Status.SUCCEEDED if tick.scrape_ok else PipelineRun.Status.FAILED,
            started_at=tick.at - min(step / 2, timedelta(minutes=2)),
            finished_at=tick.at,
            items_in=tick.items,
            items_out=tick.items,
            error="" if tick.scrape_ok else "HTTP 503 from upstream feed",
        )
    metrics = [
        MetricInput(
            source=t.source,
            timestamp=t.at,
            geocoding_attempts=t.items,
            geocoding_successes=t.geocoded,
            validation_attempts=t.items,
            validation_passes=t.validated,
        )
        for t in ticks
        if t.scrape_ok
    ]
    record_metrics(metrics=metrics)
    return len(ticks), len(metrics)


def simulate_phases(
    *,
    scenario: str,
    now: datetime,
    hours: float,
    step_minutes: float,
    seed: int | None,
    recover_hours: float = 0,
) -> Iterator[Phase]:
    """Write ``hours`` of history ending at ``now``, one phase at a time (lazily, as the caller iterates)."""
    check_arguments(scenario=scenario, hours=hours, recover_hours=recover_hours)
    step = timedelta(minutes=step_minutes)
    steps = max(1, int(timedelta(hours=hours) / step))
    incident_end = now - timedelta(hours=recover_hours)
    ticks = _ticks(
        scenario=scenario,
        start=now - step * steps,
        steps=steps,
        step=step,
        incident_end=incident_end,
        rng=random.Random(seed),
    )
    if not recover_hours:
        yield Phase(scenario, now, *_write(ticks, step=step))
        return
    yield Phase("incident", incident_end, *_write([t for t in ticks if t.at <= incident_end], step=step))
    yield Phase("recovery", now, *_write([t for t in ticks if t.at > incident_end], step=step))


def simulate(
    *,
    scenario: str,
    now: datetime,
    hours: float,
    step_minutes: float,
    seed: int | None,
    recover_hours: float = 0,
) -> dict[str, int]:
    """Write ``hours`` of history ending at ``now``; returns how many runs and metrics were written."""
    phases = list(
        simulate_phases(
            scenario=scenario,
            now=now,
            hours=hours,
            step_minutes=step_minutes,
            seed=seed,
            recover_hours=recover_hours,
        )
    )
    return {"runs": sum(p.runs for p in phases), "metrics": sum(p.metrics for p in phases)}
