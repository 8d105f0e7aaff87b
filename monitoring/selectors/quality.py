"""Data quality over a window: geocoding and validation rates, overall, per source and per stage."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from monitoring.conf import Thresholds
from monitoring.models.metrics import COUNT_FIELDS
from monitoring.selectors.common import CRITICAL, DEGRADED, HEALTHY, NO_DATA, isoformat, rate, worst
from monitoring.windows import STAGE_ORDER, add_up, merge, newest_report, window_sums


def _rate_status(*, value: float, attempts: int, warn: float, critical: float, min_sample: int) -> str:
    if attempts < min_sample:
        return NO_DATA
    if value < critical:
        return CRITICAL
    if value < warn:
        return DEGRADED
    return HEALTHY


def _quality_block(row: dict[str, Any], *, limits: Thresholds) -> dict[str, Any]:
    geocoding = rate(numerator=row["geocoding_successes"], denominator=row["geocoding_attempts"])
    validation = rate(numerator=row["validation_passes"], denominator=row["validation_attempts"])
    status = worst(
        _rate_status(
            value=geocoding,
            attempts=row["geocoding_attempts"],
            warn=limits.geocoding_warn,
            critical=limits.geocoding_critical,
            min_sample=limits.min_sample_size,
        ),
        _rate_status(
            value=validation,
            attempts=row["validation_attempts"],
            warn=limits.validation_warn,
            critical=limits.validation_critical,
            min_sample=limits.min_sample_size,
        ),
    )
    return {
        "status": status,
        "geocoding_success_rate": geocoding,
        "validation_pass_rate": validation,
        **{field: row[field] for field in COUNT_FIELDS},
        "total_geocoded": row["geocoding_successes"],
        "total_validated": row["validation_passes"],
        "reports": row["reports"],
        "last_updated": isoformat(row["last_updated"]),
    }


def data_quality(*, now: datetime, window_hours: int, limits: Thresholds) -> dict[str, Any]:
    # One statement per source and stage: the totals, ``by_source`` and ``by_stage`` are added up from the
    # same rows, so they always agree (two statements could see different commits).
    groups = window_sums(start=now - timedelta(hours=window_hours), end=now, per_stage=True)
    per_source = merge(groups, by="source")
    totals: dict[str, Any] = add_up(groups)
    # Newest report at any age: reports that stopped before the window began are stale, not "no data".
    newest = newest_report(now=now)
    totals["last_updated"] = newest

    block = _quality_block(totals, limits=limits)
    stale = newest is not None and (now - newest).total_seconds() > limits.data_stale_after_seconds
    if stale:
        block["status"] = worst(block["status"], DEGRADED)
    block["stale"] = stale
    block["window_hours"] = window_hours
    block["by_source"] = [{"source": row["source"], **_quality_block(row, limits=limits)} for row in per_source]
    # Per stage in pipeline order, the unstaged (null) last. Their statuses leave the block's alone: the
    # same reports are judged per source above.
    per_stage = sorted(merge(groups, by="stage"), key=lambda row: STAGE_ORDER[row["stage"]])
    block["by_stage"] = [{"stage": row["stage"], **_quality_block(row, limits=limits)} for row in per_stage]
    # A large healthy source can hide a broken small one in the totals; a source in trouble keeps the
    # whole block from reading healthy.
    if any(row["status"] in (DEGRADED, CRITICAL) for row in block["by_source"]):
        block["status"] = worst(block["status"], DEGRADED)
    return block
