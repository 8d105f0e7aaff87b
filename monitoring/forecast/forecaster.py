"""The per-source forecaster: fed closed hours in order, asked for projections and crossing times.

    forecaster = make_forecaster(tz="Asia/Damascus")
    for counts in closed_hours:            # HourCounts, one per UTC hour, in order
        forecaster.observe(counts)
    f = forecaster.forecast(metric="geocoding_success_rate", horizon_hours=24)
    f.at(6).value, f.at(6).low, f.at(6).high
    f.time_to_cross(threshold=85.0, direction="below").hours

Driven like the anomaly detectors (``monitoring/anomaly/contract.py``): one per source, built with its
IANA time zone, ``observe`` once per closed UTC hour with no hour skipped (a gap is filled with
empty hours). Each ``observe`` also projects the hours ahead at the calibration horizons, and when
those hours close their errors calibrate the bands (:mod:`monitoring.forecast.calibration`). Method:
``docs/forecasting.md``. Pure Python, no Django.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from monitoring.anomaly.contract import LEARNING as _LEARNING
from monitoring.anomaly.contract import READY as _READY
from monitoring.anomaly.contract import Readiness
from monitoring.anomaly.detector import GEOCODING_SUCCESS_RATE, METRICS, VALIDATION_PASS_RATE, VOLUME, HourCounts
from monitoring.anomaly.seasonal import LocalClock, Slot
from monitoring.forecast.calibration import ErrorBook
from monitoring.forecast.components import RateSeries, State, VolumeSeries
from monitoring.forecast.config import ForecastConfig
from monitoring.forecast.result import LEARNING, NO_DATA, READY, Forecast, Trend
from monitoring.forecast.trend import damped_steps

HOUR = timedelta(hours=1)
RATES = (GEOCODING_SUCCESS_RATE, VALIDATION_PASS_RATE)
_UNITS = {VOLUME: "records", GEOCODING_SUCCESS_RATE: "points", VALIDATION_PASS_RATE: "points"}


class SourceForecaster:
    def __init__(self, *, tz: str = "UTC", config: ForecastConfig | None = None) -> None:
        self.config = c = config or ForecastConfig()
        self.clock = LocalClock(tz)
        self.volume = VolumeSeries(config=c)
        self.rates = {m: RateSeries(config=c) for m in RATES}
        size = c.error_days * 24
        self.books = {
            m: ErrorBook(horizons=c.error_horizons, size=size, coverage=c.coverage, min_errors=c.min_errors)
            for m in METRICS
        }
        # Target position → [(metric, horizon, projected value)], scored when that hour closes.
        self.pending: dict[int, list[tuple[str, int, float]]] = {}
        longest = max(c.max_horizon_hours, *c.error_horizons)
        self.steps = damped_steps(damping=c.damping, horizon=longest)
        self.revert = {
            m: [(c.reversion_volume if m == VOLUME else c.reversion) ** h for h in range(longest + 1)] for m in METRICS
        }
        self.hours_seen = 0
        self.last_hour: datetime | None = None
        self._states: dict[str, State] = {}
        # Local slots of the hours ahead, kept across hours: each hour adds one (a time zone lookup).
        self._slots: dict[datetime, Slot] = {}
        self._paths: dict[str, list] = {}  # per metric, "season:<metric>" and "slots", for the hour
        self._cache: dict[tuple[str, int], Forecast] = {}

    # -- feeding -------------------------------------------------------------------------------

    def readiness(self) -> Readiness:
        needed = self.config.hours_needed
        state = _READY if self.hours_seen >= needed else _LEARNING
        return Readiness(state=state, hours_seen=self.hours_seen, hours_needed=needed)

    def observe(self, counts: HourCounts) -> None:
        """Feed one closed UTC hour (the hour after the last one; a gap is filled with empty hours)."""
        if self.last_hour is not None:
            if counts.hour <= self.last_hour:
                raise ValueError(f"hour {counts.hour.isoformat()} is not after {self.last_hour.isoformat()}")
            hour = self.last_hour + HOUR
            while hour < counts.hour:
                self._observe(HourCounts(hour=hour))
                hour += HOUR
        self._observe(counts)

    def _observe(self, counts: HourCounts) -> None:
        position = self.hours_seen
        slot = self.clock.slot(counts.hour)
        one_ahead: dict[str, float] = {}
        pairs = {
            GEOCODING_SUCCESS_RATE: (counts.geocoding_successes, counts.geocoding_attempts),
            VALIDATION_PASS_RATE: (counts.validation_passes, counts.validation_attempts),
        }
        for metric, horizon, projected in self.pending.pop(position, ()):
            if horizon == 1:
                one_ahead[metric] = projected
            self._score(metric, horizon, projected, counts.geocoding_attempts, pairs)
        self.volume.add(position, slot, counts.geocoding_attempts, predicted=one_ahead.get(VOLUME))
        for metric, (x, n) in pairs.items():
            self.rates[metric].add(position, slot, x, n, predicted=one_ahead.get(metric))
        self.hours_seen += 1
        self.last_hour = counts.hour
        self._cache.clear()
        self._paths.clear()
        self._slots.pop(counts.hour - HOUR, None)
        self._slots[counts.hour] = slot
        self._states = {VOLUME: self.volume.state(position), **{m: s.state(position) for m, s in self.rates.items()}}
        if self.hours_seen >= self.config.calibrate_from_hours:
            self._project_for_calibration(position)

    def _score(self, metric: str, horizon: int, projected: float, volume: int, pairs: dict) -> None:
        """Keep the standardised error of a projection made ``horizon`` hours ago for the hour just closed."""
        if metric == VOLUME:
            error = (volume - projected) / self.volume.noise_sd(projected)
        else:
            x, n = pairs[metric]
            if n <= 0:
                return
            error = (100.0 * x / n - projected) / self.rates[metric].noise_sd(projected, n)
        self.books[metric].add(horizon=horizon, error=error)

    def _project_for_calibration(self, position: int) -> None:
        for h in self.config.error_horizons:
            slot = self._slot(h)
            for metric in METRICS:
                value = self._central(metric, h, slot)
                if value is not None:
                    self.pending.setdefault(position + h, []).append((metric, h, value))

    # -- projecting ----------------------------------------------------------------------------

    def _slot(self, hours_ahead: int) -> Slot:
        hour = self.last_hour + hours_ahead * HOUR
        slot = self._slots.get(hour)
        if slot is None:
            slot = self._slots[hour] = self.clock.slot(hour)
        return slot

    def _season(self, metric: str, horizon: int) -> list[float]:
        """The seasonal part for 0..``horizon`` hours ahead (index 0: the last closed hour), cached for the hour."""
        key = "season:" + metric
        season = self._paths.get(key)
        if season is None or len(season) <= horizon:
            of = self._series(metric).season
            slots = self._slots_ahead(horizon)
            season = self._paths[key] = [of(slots[h]) for h in range(horizon + 1)]
        return season

    def _slots_ahead(self, horizon: int) -> list[Slot]:
        slots = self._paths.get("slots")
        if slots is None or len(slots) <= horizon:
            slots = self._paths["slots"] = [self._slot(h) for h in range(horizon + 1)]
        return slots

    def _path(self, metric: str, horizon: int) -> list[float] | None:
        """Central projections for 0..``horizon`` hours ahead, cached for the hour (same as :meth:`_central`)."""
        path = self._paths.get(metric)
        if path is None or len(path) <= horizon:
            state = self._states[metric]
            if state.level is None:
                return None
            season = self._season(metric, horizon)
            if state.significant:
                level, slope, steps = state.level, state.projected, self.steps
                drift = [level + slope * steps[h] for h in range(horizon + 1)]
            else:
                long, gap, revert = state.long_level, state.level - state.long_level, self.revert[metric]
                drift = [long + gap * revert[h] for h in range(horizon + 1)]
            if metric == VOLUME:
                path = [s * max(d, 0.0) for d, s in zip(drift, season, strict=True)]
            else:
                path = [min(max(d + s, 0.0), 100.0) for d, s in zip(drift, season, strict=True)]
            self._paths[metric] = path
        return path

    def _drift(self, metric: str, state: State, hours_ahead: int) -> float:
        """The deseasonalised projection: level plus damped trend, or the level reverting to the longer run."""
        if state.significant:
            return state.level + state.projected * self.steps[hours_ahead]
        return state.long_level + (state.level - state.long_level) * self.revert[metric][hours_ahead]

    def _series(self, metric: str) -> VolumeSeries | RateSeries:
        return self.volume if metric == VOLUME else self.rates[metric]

    def _central(self, metric: str, hours_ahead: int, slot: Slot) -> float | None:
        state = self._states[metric]
        if state.level is None:
            return None
        drift = self._drift(metric, state, hours_ahead)
        series = self._series(metric)
        if metric == VOLUME:
            return series.season(slot) * max(drift, 0.0)
        return min(max(drift + series.season(slot), 0.0), 100.0)

    def forecasts(self, *, horizon_hours: int = 24) -> dict[str, Forecast]:
        """The forecast of every metric (volume first: the rates' bands use its expected attempts)."""
        return {m: self.forecast(metric=m, horizon_hours=horizon_hours) for m in METRICS}

    def forecast(self, *, metric: str, horizon_hours: int = 24) -> Forecast:
        """Projections 1..``horizon_hours`` hours after the last closed hour, with the band; or why not."""
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")
        if not 1 <= horizon_hours <= self.config.max_horizon_hours:
            raise ValueError(f"horizon_hours must be 1-{self.config.max_horizon_hours}")
        key = (metric, horizon_hours)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._cache[key] = self._forecast(metric, horizon_hours)
        return cached

    def _forecast(self, metric: str, horizon: int) -> Forecast:
        c = self.config
        unit = _UNITS[metric]
        if self.last_hour is None or self.hours_seen < c.hours_needed:
            reason = f"learning: {self.hours_seen} of {c.hours_needed} hours"
            issued = self.last_hour or datetime.min
            return Forecast(metric=metric, unit=unit, issued_after=issued, state=LEARNING, reason=reason)
        state = self._states[metric]
        series = self._series(metric)
        if state.level is None:
            return Forecast(metric=metric, unit=unit, issued_after=self.last_hour, state=NO_DATA, reason=state.reason)
        book = self.books[metric]
        season = self._season(metric, horizon)[: horizon + 1]
        central = self._path(metric, horizon)
        attempts = self._expected_attempts(metric, horizon) if metric in RATES else None
        bands = book.bands(horizon)
        hi_bound = series.bounds[1]
        if attempts is None:
            dispersion = self.volume.baseline.dispersion
            sds = [math.sqrt(max(v, 1.0) + dispersion * v * v) for v in central[: horizon + 1]]
        else:
            rho = series.baseline.rho
            sds = [
                100.0 * math.sqrt(p * (1 - p) * (1.0 / max(n, 1.0) + rho))
                for p, n in zip(
                    (min(max(v / 100.0, 0.005), 0.995) for v in central[: horizon + 1]),
                    attempts[: horizon + 1],
                    strict=True,
                )
            ]
        values = tuple(central[1 : horizon + 1])
        lows = tuple(
            min(max(v + band[0] * sd, 0.0), hi_bound)
            for v, band, sd in zip(values, bands[1:], sds[1 : horizon + 1], strict=True)
        )
        highs = tuple(
            min(max(v + band[1] * sd, 0.0), hi_bound)
            for v, band, sd in zip(values, bands[1:], sds[1 : horizon + 1], strict=True)
        )
        trend = self._trend(state)
        current = season[0] * state.level if metric == VOLUME else min(max(state.level + season[0], 0.0), 100.0)
        return Forecast(
            metric=metric,
            unit=unit,
            issued_after=self.last_hour,
            state=READY,
            current=current,
            level=state.level,
            level_hours=state.level_hours,
            long_level=state.long_level,
            trend=trend,
            seasonality=self._seasonality(metric),
            coverage=c.coverage,
            calibrated=all(book.calibrated(h) for h in (1, horizon)),
            values=values,
            lows=lows,
            highs=highs,
            season=tuple(season),
            steps=tuple(self.steps[: horizon + 1]),
            multiplicative=metric == VOLUME,
            bounds=series.bounds,
        )

    def _expected_attempts(self, metric: str, horizon: int) -> list[float]:
        """Expected attempts behind the rate in each hour ahead: volume's projection (× geocoding for validation)."""
        volume = self._path(VOLUME, horizon) or [0.0] * (horizon + 1)
        if metric == GEOCODING_SUCCESS_RATE:
            return volume
        geo = self._path(GEOCODING_SUCCESS_RATE, horizon)
        if geo is None:
            return volume
        return [v * g / 100.0 for v, g in zip(volume, geo, strict=True)]

    def _trend(self, state: State) -> Trend | None:
        fit = state.fit
        window = self.config.trend_hours
        first = self.last_hour - (min(self.hours_seen, window) - 1) * HOUR
        if fit is None:
            return Trend(
                slope=0.0,
                low=0.0,
                high=0.0,
                z=0.0,
                significant=False,
                projected=0.0,
                blocks=0,
                window_from=first,
                window_to=self.last_hour,
                damping=self.config.damping,
            )
        return Trend(
            slope=fit.slope,
            low=fit.low,
            high=fit.high,
            z=fit.z,
            significant=state.significant,
            projected=state.projected,
            blocks=fit.blocks,
            window_from=first,
            window_to=self.last_hour,
            damping=self.config.damping,
        )

    def _seasonality(self, metric: str) -> str:
        if metric == VOLUME:
            return f"local-hour profile over {self.volume.days()} local days × local weekday factors"
        return "local-hour offsets" if self.rates[metric].has_offsets() else "none (no local-hour offset stands out)"


def make_forecaster(*, tz: str = "UTC", config: ForecastConfig | None = None) -> SourceForecaster:
    """A fresh forecaster for one source whose day follows ``tz`` (an IANA zone)."""
    return SourceForecaster(tz=tz, config=config)
