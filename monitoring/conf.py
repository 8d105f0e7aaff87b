"""Monitoring settings, read from ``django.conf.settings`` when called (never at import)."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True, kw_only=True)
class Thresholds:
    geocoding_warn: float
    geocoding_critical: float
    validation_warn: float
    validation_critical: float
    failure_rate_warn: float
    failure_rate_critical: float
    min_sample_size: int
    min_runs: int
    source_stale_after_seconds: int
    data_stale_after_seconds: int
    source_retire_after_seconds: int
    run_timeout_seconds: int


def thresholds() -> Thresholds:
    return Thresholds(**settings.MONITORING_THRESHOLDS)


def default_window_hours() -> int:
    return settings.MONITORING_WINDOW_HOURS
