"""The anomaly-tick bench's data: N sources with hourly metric reports and scrape runs, written by COPY.

Each source has a mean volume (spread log-evenly from ~10 to ~2,000 records an hour), a time zone, a
daily cycle in local time, a local weekend, negative-binomial hour-to-hour noise and its own geocoding
and validation rates (binomial per report). An hour's records arrive as several reports (1 for the
smallest sources, up to 12, one every 5 minutes, for the largest) and one scrape run. Everything about a
(source, hour) comes from a generator seeded by the pair, so the data written in one piece by the fill
and the data written minute by minute as the simulated clock moves are the same.

The metrics are the only thing written for the detector: the rollup triggers of migration 0004 derive
``HourlyRollup`` (what ``window_sums`` reads for whole hours) and ``ScrapeSource`` for every ``COPY``.
:func:`check_rollups` verifies they add up to the metrics.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from django.db import connection

from monitoring.models import SourceSettings
from monitoring.windows import HOUR, floor_hour

METRICS = "monitoring_dataqualitymetric"
RUNS = "monitoring_pipelinerun"
ROLLUPS = "monitoring_hourlyrollup"
METRIC_COLUMNS = "timestamp, source, metric_type, geocoding_attempts, geocoding_successes, validation_attempts, "
METRIC_COLUMNS += "validation_passes, ingested_at"
RUN_COLUMNS = "source, stage, started_at, finished_at, status, items_in, items_out, error"
# (zone, local weekend days as ISO weekdays): the regions a conflict-events pipeline covers.
ZONES = (
    ("UTC", (6, 7)),
    ("Europe/Kyiv", (6, 7)),
    ("Asia/Damascus", (5, 6)),
    ("Asia/Aden", (5, 6)),
    ("Africa/Khartoum", (5, 6)),
    ("Africa/Lagos", (6, 7)),
    ("Asia/Kabul", (5, 6)),
    ("Asia/Yangon", (6, 7)),
    ("America/Bogota", (6, 7)),
    ("Europe/Berlin", (6, 7)),
)
MIN_VOLUME, MAX_VOLUME = 10.0, 2000.0
RECORDS_PER_REPORT = 40  # a report per ~40 records, at most one every 5 minutes
MAX_REPORTS = 12
NOISE_SHAPE = 25.0  # gamma shape of the hour-to-hour volume noise (negative binomial counts)
SCRAPE_FAILURE_RATE = 0.02


@dataclass(frozen=True)
class Source:
    index: int
    name: str
    zone: str
    weekend: tuple[int, int]
    volume: float  # mean records an hour
    geocoding: float
    validation: float


def make_sources(count: int, *, seed: int) -> list[Source]:
    rng = random.Random(f"{seed}:sources")
    volumes = [MIN_VOLUME * (MAX_VOLUME / MIN_VOLUME) ** (i / max(count - 1, 1)) for i in range(count)]
    rng.shuffle(volumes)
    sources = []
    for i, volume in enumerate(volumes):
        zone, weekend = ZONES[i % len(ZONES)]
        geocoding, validation = rng.uniform(0.72, 0.97), rng.uniform(0.83, 0.98)
        sources.append(Source(i, f"source-{i:03d}", zone, weekend, volume, geocoding, validation))
    return sources


def _poisson(rng: random.Random, mean: float) -> int:
    if mean < 30:  # Knuth's product of uniforms; a normal approximation above
        limit, k, product = math.exp(-mean), 0, rng.random()
        while product > limit:
            k += 1
            product *= rng.random()
        return k
    return max(0, round(rng.gauss(mean, math.sqrt(mean))))


def _binomial(rng: random.Random, n: int, p: float) -> int:
    if n < 30:
        return sum(rng.random() < p for _ in range(n))
    return min(n, max(0, round(rng.gauss(n * p, math.sqrt(n * p * (1 - p))))))


@lru_cache(maxsize=4096)
def _hour(source: Source, hour: datetime, seed: int) -> tuple[tuple[tuple, ...], tuple | None]:
    """(reports, scrape run) of ``source`` in ``hour``: reports as (timestamp, 4 counts) in time order."""
    rng = random.Random(f"{seed}:{source.name}:{hour.isoformat()}")
    local = hour.astimezone(ZoneInfo(source.zone))
    daily = 1.0 + 0.6 * math.cos(2 * math.pi * (local.hour - 15) / 24)  # busiest mid-afternoon
    weekly = 0.6 if local.isoweekday() in source.weekend else 1.0
    mean = source.volume * daily * weekly * rng.gammavariate(NOISE_SHAPE, 1 / NOISE_SHAPE)
    records = _poisson(rng, mean)
    reports: list[tuple] = []
    count = min(MAX_REPORTS, max(1, round(records / RECORDS_PER_REPORT))) if records else 0
    slot = 3600 / max(count, 1)
    for k in range(count):
        part = records // count + (1 if k < records % count else 0)
        if not part:
            continue
        at = hour + timedelta(seconds=slot * (k + rng.uniform(0.05, 0.95)))
        geocoding = _binomial(rng, part, min(1.0, rng.gauss(source.geocoding, 0.01)))
        validation = _binomial(rng, part, min(1.0, rng.gauss(source.validation, 0.01)))
        reports.append((at, part, geocoding, part, validation))
    started = hour + timedelta(minutes=(source.index * 7) % 60, seconds=rng.uniform(0, 30))
    finished = started + timedelta(seconds=rng.uniform(30, 300))
    failed = rng.random() < SCRAPE_FAILURE_RATE
    items = 0 if failed else records
    error = "HTTP 503 from upstream feed" if failed else ""
    run = (started, finished, "failed" if failed else "succeeded", items, items, error)
    return tuple(reports), run


def _text(value) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _copy(table: str, columns: str, rows: list[tuple]) -> None:
    """One COPY statement (one trigger firing), as an ingest batch or another program's bulk load."""
    if not rows:
        return
    body = "".join("\t".join(_text(value) for value in row) + "\n" for row in rows)
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        copy.write(body)


def write_between(sources: list[Source], *, start: datetime, end: datetime, seed: int) -> dict[str, int]:
    """The reports with ``start <= timestamp < end`` and the runs that finished then, one COPY per UTC hour."""
    written = {"metrics": 0, "runs": 0, "statements": 0}
    hour = floor_hour(start)
    while hour < end:
        metrics, runs = [], []
        for source in sources:
            reports, run = _hour(source, hour, seed)
            for at, *counts in reports:
                if start <= at < end:
                    ingested = min(at + timedelta(seconds=5), end)
                    metrics.append((at, source.name, "batch", *counts, ingested))
            if run is not None and start <= run[1] < end:
                runs.append((source.name, "scrape", *run))
        metrics.sort()
        _copy(METRICS, METRIC_COLUMNS, metrics)
        _copy(RUNS, RUN_COLUMNS, runs)
        written["metrics"] += len(metrics)
        written["runs"] += len(runs)
        written["statements"] += bool(metrics) + bool(runs)
        hour += HOUR
    return written


def fill(sources: list[Source], *, start: datetime, end: datetime, seed: int) -> dict[str, int]:
    """Empty the monitoring tables the status reads, then write the sources' settings and data."""
    with connection.cursor() as cursor:
        # The truncate triggers empty the rollups and the scrape state with them.
        cursor.execute(f"TRUNCATE {METRICS}, {RUNS}, {SourceSettings._meta.db_table}")
    SourceSettings.objects.bulk_create(SourceSettings(source=s.name, timezone=s.zone) for s in sources)
    written = write_between(sources, start=start, end=end, seed=seed)
    written.update(check_rollups())
    if not connection.in_atomic_block:  # VACUUM cannot run in a transaction (the tests' fill)
        with connection.cursor() as cursor:
            for table in (METRICS, ROLLUPS, RUNS):
                cursor.execute(f"VACUUM (ANALYZE) {table}")
    return written


def check_rollups() -> dict[str, int]:
    """The triggers' rollups must add up to the metrics: otherwise the detector would read other data."""
    sums = "count(*), coalesce(sum(geocoding_attempts), 0), coalesce(sum(validation_passes), 0)"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {sums} FROM {METRICS}")
        metrics = cursor.fetchone()
        cursor.execute(
            "SELECT coalesce(sum(reports), 0), coalesce(sum(geocoding_attempts), 0), "
            f"coalesce(sum(validation_passes), 0), count(*) FROM {ROLLUPS}"
        )
        *rolled, rollup_rows = cursor.fetchone()
    if tuple(metrics) != tuple(rolled):
        raise RuntimeError(f"rollups {rolled} do not add up to the metrics {metrics}: are the triggers installed?")
    return {"metric_rows": metrics[0], "rollup_rows": rollup_rows}
