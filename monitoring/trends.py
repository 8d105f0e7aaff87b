"""Trends: bucketed series of the data-quality rates and of volume, with the change versus the period before.

Every sum comes from the one window computation (:func:`monitoring.windows.window_sums`) over whole
UTC hours, which reads only the hourly rollups: they are bounded by sources x hours whatever the report
rate, and they outlive the raw metrics' retention.
Exact definitions (bucket alignment, periods, dead bands): docs/trends.md.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from monitoring.models import PipelineRun
from monitoring.selectors import isoformat, rate
from monitoring.windows import SUMMED, UNSTAGED, add_up, floor_hour, window_sums

GEOCODING_SUCCESS_RATE = "geocoding_success_rate"
VALIDATION_PASS_RATE = "validation_pass_rate"  # noqa: S105 (a metric name, not a secret)
VOLUME = "volume"
METRICS = (GEOCODING_SUCCESS_RATE, VALIDATION_PASS_RATE, VOLUME)
# Rate metric -> (numerator, denominator) rollup columns.
RATE_PARTS = {
    GEOCODING_SUCCESS_RATE: ("geocoding_successes", "geocoding_attempts"),
    VALIDATION_PASS_RATE: ("validation_passes", "validation_attempts"),
}
# Volume counts the records that entered the pipeline; every record is offered to geocoding first.
VOLUME_RECORDS = "geocoding_attempts"

# ``stage``: a pipeline stage, or the metrics reported without one.
UNSTAGED_NAME = "unstaged"
STAGE_FILTERS = (*PipelineRun.Stage.values, UNSTAGED_NAME)

HOUR = "hour"
DAY = "day"
BUCKET_HOURS = {HOUR: 1, DAY: 24}
DEFAULT_WINDOW_HOURS = {HOUR: 24, DAY: 720}
MIN_WINDOW_HOURS = 1
# 90 days: with its previous period a query reaches 180 days back, all of it answered from rollups.
MAX_WINDOW_HOURS = 2160
MAX_BUCKETS = 2160

# Changes smaller than these read as "flat": noise of one hour must not flip a dashboard arrow.
RATE_DEAD_BAND_POINTS = Decimal("1.0")
VOLUME_DEAD_BAND_PERCENT = Decimal("5.0")

UP = "up"
DOWN = "down"
FLAT = "flat"


def _floor(moment: datetime, *, bucket: str) -> datetime:
    hour = floor_hour(moment)
    return hour.replace(hour=0) if bucket == DAY else hour


def _bucket_sums(
    *, source: str | None, stage: str | None, bucket: str, start: datetime, end: datetime
) -> dict[datetime, dict[str, int]]:
    """Per-bucket sums over all matching sources: the window's hourly sums, added up per bucket."""
    sums: dict[datetime, dict[str, int]] = {}
    for row in window_sums(start=start, end=end, source=source, stage=stage, per_hour=True, per_source=False):
        totals = sums.setdefault(_floor(row["hour"], bucket=bucket), dict.fromkeys(SUMMED, 0))
        for column in SUMMED:
            totals[column] += row[column]
    return sums


def _period_sums(*, source: str | None, stage: str | None, start: datetime, end: datetime) -> dict[str, int]:
    """Sums of ``start <= t < end`` over all matching sources."""
    return add_up(window_sums(start=start, end=end, source=source, stage=stage, per_source=False))


def _rate_value(sums: dict[str, int], *, metric: str) -> dict[str, Any]:
    numerator, denominator = (int(sums.get(column) or 0) for column in RATE_PARTS[metric])
    # null, not 0.0: a bucket nobody reported on is a gap, not a collapse to zero.
    value = rate(numerator=numerator, denominator=denominator) if denominator else None
    return {"rate": value, "numerator": numerator, "denominator": denominator}


def _volume_value(sums: dict[str, int]) -> dict[str, Any]:
    return {"records": int(sums.get(VOLUME_RECORDS) or 0), "reports": int(sums.get("reports") or 0)}


def _direction(change: Decimal, *, dead_band: Decimal) -> str:
    if change >= dead_band:
        return UP
    if change <= -dead_band:
        return DOWN
    return FLAT


def _rate_change(current: dict[str, Any], previous: dict[str, Any]) -> tuple[float | None, str | None]:
    if current["rate"] is None or previous["rate"] is None:
        return None, None
    # The shown (rounded) rates are compared, so the change always equals the difference a reader sees.
    change = Decimal(str(current["rate"])) - Decimal(str(previous["rate"]))
    return float(change), _direction(change, dead_band=RATE_DEAD_BAND_POINTS)


def _volume_change(current: dict[str, Any], previous: dict[str, Any]) -> tuple[float | None, str]:
    before, after = previous["records"], current["records"]
    if before == 0:
        # Growth from nothing has no percentage; its direction is still plain.
        return None, UP if after > 0 else FLAT
    change = rate(numerator=after - before, denominator=before)
    return change, _direction(Decimal(str(change)), dead_band=VOLUME_DEAD_BAND_PERCENT)


def _metric_block(
    metric: str, *, starts: list[datetime], sums: dict[datetime, dict], current: dict, previous: dict
) -> dict[str, Any]:
    empty: dict[str, int] = {}
    if metric == VOLUME:
        now_value, before_value = _volume_value(current), _volume_value(previous)
        change, direction = _volume_change(now_value, before_value)
        return {
            "points": [{"start": isoformat(start), **_volume_value(sums.get(start, empty))} for start in starts],
            "current": now_value,
            "previous": before_value,
            "change": change,
            "change_unit": "percent",
            "dead_band": float(VOLUME_DEAD_BAND_PERCENT),
            "direction": direction,
        }
    now_value, before_value = _rate_value(current, metric=metric), _rate_value(previous, metric=metric)
    change, direction = _rate_change(now_value, before_value)
    return {
        "points": [
            {"start": isoformat(start), **_rate_value(sums.get(start, empty), metric=metric)} for start in starts
        ],
        "current": now_value,
        "previous": before_value,
        "change": change,
        "change_unit": "points",
        "dead_band": float(RATE_DEAD_BAND_POINTS),
        "direction": direction,
    }


def trends(
    *,
    now: datetime,
    metrics: list[str],
    source: str | None,
    bucket: str,
    window_hours: int,
    stage: str | None = None,
) -> dict:
    """Bucketed series and change versus the previous period, per metric (see docs/trends.md).

    The series holds ``window_hours / bucket`` buckets aligned to UTC hours or days; the last one is the
    current, still-filling bucket. ``current`` / ``previous`` compare the last ``window_hours`` complete
    hours with the ``window_hours`` before them. ``stage`` (one of ``STAGE_FILTERS``) keeps the metrics
    of one stage, or (``unstaged``) those reported without one; ``None``: every metric.
    """
    if timezone.is_naive(now):
        raise ValueError("now must be timezone-aware")
    if not metrics or any(metric not in METRICS for metric in metrics):
        raise ValueError(f"metrics must be a non-empty list of {', '.join(METRICS)}")
    if bucket not in BUCKET_HOURS:
        raise ValueError(f"bucket must be one of {', '.join(BUCKET_HOURS)}")
    if stage is not None and stage not in STAGE_FILTERS:
        raise ValueError(f"stage must be one of {', '.join(STAGE_FILTERS)}")
    stage_key = UNSTAGED if stage == UNSTAGED_NAME else stage
    if not MIN_WINDOW_HOURS <= window_hours <= MAX_WINDOW_HOURS:
        raise ValueError(f"window_hours must be within {MIN_WINDOW_HOURS}..{MAX_WINDOW_HOURS}")
    step_hours = BUCKET_HOURS[bucket]
    if window_hours % step_hours:
        raise ValueError(f"window_hours must be a multiple of {step_hours} with {bucket} buckets")
    count = window_hours // step_hours
    if count > MAX_BUCKETS:
        raise ValueError(f"at most {MAX_BUCKETS} buckets")

    step = timedelta(hours=step_hours)
    series_end = _floor(now, bucket=bucket) + step
    series_start = series_end - step * count
    starts = [series_start + step * i for i in range(count)]
    sums = _bucket_sums(source=source, stage=stage_key, bucket=bucket, start=series_start, end=series_end)

    # Complete hours only: a still-filling hour against a full one would read as a drop every hour.
    current_end = _floor(now, bucket=HOUR)
    current_start = current_end - timedelta(hours=window_hours)
    previous_start = current_start - timedelta(hours=window_hours)
    current = _period_sums(source=source, stage=stage_key, start=current_start, end=current_end)
    previous = _period_sums(source=source, stage=stage_key, start=previous_start, end=current_start)

    return {
        "timestamp": isoformat(now),
        "source": source,
        "stage": stage,
        "bucket": bucket,
        "window_hours": window_hours,
        "start": isoformat(series_start),
        "end": isoformat(series_end),
        "periods": {
            "current": {"start": isoformat(current_start), "end": isoformat(current_end)},
            "previous": {"start": isoformat(previous_start), "end": isoformat(current_start)},
        },
        "metrics": {
            metric: _metric_block(metric, starts=starts, sums=sums, current=current, previous=previous)
            for metric in dict.fromkeys(metrics)
        },
    }
