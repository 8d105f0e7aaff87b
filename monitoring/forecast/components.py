"""One metric of one source, as the forecaster models it: a seasonal part, a level, a damped trend.

- **Volume** (records per hour): ``expected = base(local hour, local weekday) × (level + trend)``.
  ``base`` is the anomaly detector's seasonal baseline (:class:`monitoring.anomaly.seasonal.VolumeBaseline`:
  per local hour the median of up to 14 local days, times a local weekday factor), so the forecast
  follows the source's own news day, weekend and clock changes. ``level`` is the recent volume as a
  share of that base; the trend is the Theil-Sen slope of that share.
- **Rates** (points): ``expected = level + trend + offset(local hour)``, the offsets being the rate
  baseline's (:class:`monitoring.anomaly.rates.RateBaseline`: medians shrunk towards 0 by their
  sampling error). Levels and blocks pool successes over attempts, so a night hour of 12 records weighs
  a tenth of a day hour of 120.

The level is the pooled value of the last few closed hours (extended until it holds enough records)
moved to the last hour along a significant trend: a step shows in it within hours, where the
window's median would lag by half a day.

Pure Python, no Django.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass

from monitoring.anomaly.rates import RateBaseline
from monitoring.anomaly.seasonal import Slot, VolumeBaseline
from monitoring.forecast.config import ForecastConfig
from monitoring.forecast.trend import Fit, pool, theil_sen


@dataclass(slots=True)
class State:
    """A metric's model after the last closed hour (``position`` on the forecaster's hour axis)."""

    position: int
    level: float | None  # None: no data to forecast from
    level_hours: int
    fit: Fit | None
    projected: float  # the slope projected (0 without a significant trend)
    significant: bool
    reason: str | None = None
    long_level: float | None = None  # what an untrended level reverts to


class _Series:
    """Recent hours as ``(position, numerator, denominator)`` for the level and the trend."""

    multiplicative = False
    bounds = (0.0, 100.0)
    unit = ""

    def __init__(self, *, config: ForecastConfig) -> None:
        self.config = config
        self.recent: deque[tuple[int, Slot, float, float]] = deque(maxlen=max(config.trend_hours, config.long_hours))

    def _pairs(self, hours: int) -> list[tuple[float, float, float]]:
        """(position, numerator, denominator) of the last ``hours``, deseasonalised with today's season."""
        raise NotImplementedError

    def state(self, position: int) -> State:
        c = self.config
        everything = self._pairs(max(c.trend_hours, c.long_hours))
        pairs = everything[-c.trend_hours :]
        fit = theil_sen(pool(pairs, block_hours=c.block_hours, min_sample=c.min_block_sample), coverage=c.coverage)
        if fit is not None and fit.blocks < c.min_blocks:
            fit = None
        significant = fit is not None and abs(fit.z) >= (c.trend_z_volume if self.multiplicative else c.trend_z)
        projected = fit.slope if significant else 0.0
        num = den = weighted = 0.0
        hours = 0
        for pos, n, d in reversed(pairs):  # the level pools at most the trend window
            num, den, weighted, hours = num + n, den + d, weighted + d * pos, hours + 1
            if hours >= c.level_hours and den >= c.level_sample:
                break
        if den <= 0:
            return State(position, None, hours, fit, 0.0, False, self._no_data(hours))
        # The pooled hours are centred behind the last one: move the level along the projected trend.
        level = num / den + projected * (position - weighted / den)
        # The longer run is the median of its blocks, not their pooled mean: an incident of less than a
        # day inside it must not pull the projection of a recovered source back down.
        long_blocks = pool(everything[-c.long_hours :], block_hours=c.block_hours, min_sample=c.min_block_sample)
        long_level = statistics.median(b.value for b in long_blocks) if len(long_blocks) >= 3 else level
        return State(position, level, hours, fit, projected, significant, None, long_level)

    def _no_data(self, hours: int) -> str:
        return f"no data in the last {hours} hours"


class VolumeSeries(_Series):
    multiplicative = True
    bounds = (0.0, math.inf)
    unit = "records"

    def __init__(self, *, config: ForecastConfig) -> None:
        super().__init__(config=config)
        self.baseline = VolumeBaseline(history_hours=config.history_days * 24)

    def add(self, position: int, slot: Slot, volume: int, *, predicted: float | None) -> None:
        self.baseline.add(slot, volume, clean=True, predicted=predicted)
        self.recent.append((position, slot, float(volume), 0.0))

    def season(self, slot: Slot) -> float:
        return self.baseline.base(slot)

    def _pairs(self, hours: int) -> list[tuple[float, float, float]]:
        base = self.baseline.base
        return [(pos, v, base(slot)) for pos, slot, v, _ in list(self.recent)[-hours:]]

    def state(self, position: int) -> State:
        out = super().state(position)
        if out.level is None:
            # Nothing expected at all recently (a profile of zeros): project the profile as it is.
            return State(position, 1.0, out.level_hours, None, 0.0, False, None, 1.0)
        return out

    def noise_sd(self, expected: float) -> float:
        """Negative-binomial spread of one hour's count around ``expected`` (the detector's dispersion)."""
        e = max(expected, 1.0)
        return math.sqrt(e + self.baseline.dispersion * e * e)

    def days(self) -> int:
        """Local days the profile is learnt from (at most its 14)."""
        return min(math.ceil(len(self.baseline.hours) / 24), 14)


class RateSeries(_Series):
    unit = "points"

    def __init__(self, *, config: ForecastConfig) -> None:
        super().__init__(config=config)
        self.baseline = RateBaseline(history_hours=config.history_days * 24)

    def add(self, position: int, slot: Slot, successes: int, attempts: int, *, predicted: float | None) -> None:
        p = None if predicted is None else min(max(predicted / 100.0, 0.001), 0.999)
        self.baseline.add(slot, successes, attempts, clean=True, predicted=p)
        self.recent.append((position, slot, float(successes), float(attempts)))

    def season(self, slot: Slot) -> float:
        return 100.0 * self.baseline.offsets[slot.local_hour]

    def _pairs(self, hours: int) -> list[tuple[float, float, float]]:
        offsets = self.baseline.offsets
        return [(pos, 100.0 * (x - offsets[slot.local_hour] * n), n) for pos, slot, x, n in list(self.recent)[-hours:]]

    def _no_data(self, hours: int) -> str:
        return f"no attempts in the last {hours} hours"

    def noise_sd(self, expected: float, attempts: float) -> float:
        """Beta-binomial spread, in points, of one hour's rate from ``attempts`` around ``expected``."""
        p = min(max(expected / 100.0, 0.005), 0.995)
        return 100.0 * math.sqrt(p * (1 - p) * (1.0 / max(attempts, 1.0) + self.baseline.rho))

    def has_offsets(self) -> bool:
        return any(self.baseline.offsets)
