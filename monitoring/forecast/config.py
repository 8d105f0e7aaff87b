"""The forecaster's constants, in one place (overridable in code: ``make_forecaster(config=…)``).

The values were tuned on the development seeds 101-106 of ``bench/anomaly_world`` and checked on
107-110 (never on the held-out seeds 1-5); ``docs/forecasting.md`` gives the figures behind them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class ForecastConfig:
    # Learning until this many closed hours: a local-time daily profile is a median per local hour,
    # and a median of fewer than three days is one bad day away from wrong.
    hours_needed: int = 72
    # Internal forecasts (for calibrating the bands) start here, so that by ``hours_needed`` the
    # 24-hour errors have a day of samples.
    calibrate_from_hours: int = 24
    # The longest horizon asked for (the engine projects hour by hour up to it).
    max_horizon_hours: int = 48
    # Days of hourly history the seasonal baselines keep (profile 14 days, weekday factors 28).
    history_days: int = 28
    # The trend: Theil-Sen slope of pooled blocks of ``block_hours`` over the last ``trend_hours``.
    trend_hours: int = 24
    block_hours: int = 3
    min_blocks: int = 5
    # A block needs this many attempts (rates) or expected records (volume) to enter the fit.
    min_block_sample: float = 20.0
    # Mann-Kendall z a rate's trend needs before it is projected (5 % one-sided). Volume needs more:
    # its trends are mostly news cycles that turn, and projecting them cost 24-hour accuracy.
    trend_z: float = 1.645
    trend_z_volume: float = 2.5
    # Per-hour damping of the trend (Gardner-McKenzie): a slide is projected to slow down, so a
    # 24-hour projection carries 19 hours of the slope, not 24, and a step is not extrapolated for ever.
    damping: float = 0.98
    # The level: the pooled (deseasonalised) value of the last ``level_hours`` closed hours, extended
    # hour by hour up to ``trend_hours`` until it holds ``level_sample`` attempts or expected records.
    level_hours: int = 6
    level_sample: float = 150.0
    # Without a significant trend the level reverts, by ``reversion`` per hour, to the median of the
    # last ``long_hours``' blocks: a news burst or a few noisy hours fade, a level one day ahead is
    # mostly the longer run's. With a trend it does not (the trend is what is projected).
    long_hours: int = 48
    reversion: float = 0.9
    reversion_volume: float = 0.9
    # The band: empirical quantiles of past standardised errors at these horizons (interpolated in
    # between), over the last ``error_days`` days; fewer than ``min_errors`` and a normal band
    # stands in, marked uncalibrated.
    coverage: float = 0.8
    error_horizons: tuple[int, ...] = (1, 2, 3, 6, 12, 24, 48)
    error_days: int = 14
    min_errors: int = 24
