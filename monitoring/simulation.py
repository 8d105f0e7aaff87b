"""Realistic pipeline traffic for demos and manual testing, written through the normal services.

Each source scrapes once per step, then reports how many records it geocoded and validated.
Scenarios bend one source away from normal so a newcomer sees every status:

- ``normal``: every source healthy, with a daily volume cycle and noise;
- ``failing-scraper``: the scraper of one source fails most runs for the last hours and goes stale;
- ``geocoding-outage``: one source's geocoder succeeds for ~20 % of records for the last hours;
- ``volume-drop``: one source delivers a tenth of its usual volume for the last hours.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitoring.models import PipelineRun
from monitoring.services.metrics import MetricInput, record_metrics
from monitoring.services.runs import record_run

SCENARIOS = ("normal", "failing-scraper", "geocoding-outage", "volume-drop")
# Conflict-event feeds of different size and quality.
SOURCES = {
    "acled": (420, 0.93, 0.96),
    "reliefweb": (180, 0.90, 0.94),
    "liveuamap": (650, 0.88, 0.92),
    "gdelt": (1500, 0.86, 0.91),
    "local-news": (90, 0.91, 0.95),
}
# How far back an incident started, and which source it hits.
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


def _ticks(*, scenario: str, start: datetime, steps: int, step: timedelta, rng: random.Random) -> list[Tick]:
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")
    incident_source = INCIDENT_SOURCE.get(scenario)
    incident_start = start + step * steps - timedelta(hours=INCIDENT_HOURS)
    ticks = []
    for i in range(steps):
        at = start + step * (i + 1)
        daily = 1 + 0.35 * math.sin(2 * math.pi * (at.hour - 6) / 24)
        for source, (volume, geo_p, val_p) in SOURCES.items():
            hit = source == incident_source and at >= incident_start
            scrape_ok = rng.random() > (0.85 if hit and scenario == "failing-scraper" else 0.02)
            items = max(0, round(volume * daily * step.total_seconds() / 3600 * rng.uniform(0.85, 1.15)))
            if hit and scenario == "volume-drop":
                items = round(items * 0.1)
            if not scrape_ok:
                items = 0
            geo_rate = 0.2 if hit and scenario == "geocoding-outage" else geo_p
            geocoded = sum(1 for _ in range(items) if rng.random() < geo_rate)
            validated = sum(1 for _ in range(items) if rng.random() < val_p)
            ticks.append(Tick(source, at, scrape_ok, items, geocoded, validated))
    return ticks


def simulate(*, scenario: str, now: datetime, hours: float, step_minutes: float, seed: int | None) -> dict[str, int]:
    """Write ``hours`` of history ending at ``now``; returns how many runs and metrics were written."""
    step = timedelta(minutes=step_minutes)
    steps = max(1, int(timedelta(hours=hours) / step))
    rng = random.Random(seed)
    ticks = _ticks(scenario=scenario, start=now - step * steps, steps=steps, step=step, rng=rng)
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
    return {"runs": len(ticks), "metrics": len(metrics)}
