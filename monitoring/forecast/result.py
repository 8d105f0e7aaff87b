"""What a forecast says, explainably: projections with their band, the trend behind them, crossings.

A :class:`Forecast` is issued after a closed hour ``issued_after``; ``hours_ahead = h`` names the hour
that starts h hours after it (h = 1 is the hour now filling up). Every value carries what made it: the
level and the hours it was pooled over, the trend (slope, its interval, the Mann-Kendall z and the
window), the seasonality used, and whether the band comes from the source's own past errors.

Pure Python, no Django.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

READY = "ready"
LEARNING = "learning"
NO_DATA = "no_data"
BELOW = "below"
ABOVE = "above"


@dataclass(frozen=True, kw_only=True)
class Trend:
    """The robust local trend, in the metric's level units per hour (points/h; share of usual/h for volume)."""

    slope: float  # Theil-Sen
    low: float  # its interval (Sen's method, at the forecast's coverage)
    high: float
    z: float  # Mann-Kendall
    significant: bool
    projected: float  # the slope projected: ``slope`` when significant, else 0
    blocks: int
    window_from: datetime  # first and last hour of the fitted window
    window_to: datetime
    damping: float

    def as_dict(self) -> dict[str, object]:
        return {
            "slope_per_hour": round(self.slope, 4),
            "interval": [round(self.low, 4), round(self.high, 4)],
            "mann_kendall_z": round(self.z, 2),
            "significant": self.significant,
            "projected_slope_per_hour": round(self.projected, 4),
            "blocks": self.blocks,
            "window": [self.window_from.isoformat(), self.window_to.isoformat()],
            "damping_per_hour": self.damping,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class Projection:
    hours_ahead: int
    hour: datetime
    value: float
    low: float
    high: float


@dataclass(frozen=True, kw_only=True)
class Crossing:
    """When the projection crosses ``threshold`` (first hour past it), with the band from the slope's interval.

    ``hours`` is None when no crossing is projected within the forecast's horizon, and ``reason`` says
    why ("learning: 30 of 72 hours", "no trend", "not within 24 h at the current trend"). 0 means
    the current value is already past the threshold. ``earliest`` is the crossing at the adverse end of
    the slope's interval, ``latest`` at the lenient end (None: not within the horizon even so).
    """

    threshold: float
    direction: str
    hours: int | None
    earliest: int | None
    latest: int | None
    reason: str | None
    explanation: str
    hour: datetime | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "threshold": self.threshold,
            "direction": self.direction,
            "hours": self.hours,
            "earliest_hours": self.earliest,
            "latest_hours": self.latest,
            "hour": self.hour.isoformat() if self.hour else None,
            "reason": self.reason,
            "explanation": self.explanation,
        }


@dataclass(frozen=True, kw_only=True)
class Forecast:
    metric: str
    unit: str
    issued_after: datetime
    state: str
    reason: str | None = None
    current: float | None = None  # the level now, with this hour's season
    level: float | None = None  # deseasonalised level (points; share of usual for volume)
    level_hours: int = 0  # closed hours the level was pooled over
    long_level: float | None = None  # what the level reverts to without a trend (median of 48 h)
    trend: Trend | None = None
    seasonality: str = "none"
    coverage: float = 0.8
    calibrated: bool = False
    # The projections for 1..horizon hours ahead (index 0: one hour ahead), as plain sequences: a
    # forecast is made every hour for every metric, and most are read at two or three horizons.
    values: tuple[float, ...] = ()
    lows: tuple[float, ...] = ()
    highs: tuple[float, ...] = ()
    # What time_to_cross re-projects with other slopes: per hours_ahead (index 0 = now) the seasonal
    # part (added for rates, multiplied for volume) and the damped number of trend hours.
    season: tuple[float, ...] = field(default=(), repr=False)
    steps: tuple[float, ...] = field(default=(), repr=False)
    multiplicative: bool = field(default=False, repr=False)
    bounds: tuple[float, float] = field(default=(0.0, 100.0), repr=False)
    # The built path and the time_to_cross answers per (threshold, direction): several rules may ask
    # about one threshold.
    _memo: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def ready(self) -> bool:
        return self.state == READY

    @property
    def horizon_hours(self) -> int:
        return len(self.values)

    @property
    def path(self) -> tuple[Projection, ...]:
        path = self._memo.get("path")
        if path is None:
            path = self._memo["path"] = tuple(self.at(h) for h in range(1, len(self.values) + 1))
        return path

    def at(self, hours_ahead: int) -> Projection:
        """The projection ``hours_ahead`` hours on (clamped to 1..horizon)."""
        if not self.values:
            raise LookupError(self.reason or "no projection")
        h = min(max(hours_ahead, 1), len(self.values))
        return Projection(
            hours_ahead=h,
            hour=self.issued_after + timedelta(hours=h),
            value=self.values[h - 1],
            low=self.lows[h - 1],
            high=self.highs[h - 1],
        )

    def time_to_cross(self, *, threshold: float, direction: str = BELOW) -> Crossing:
        """Hours until the projection is past ``threshold`` (``below`` it, or ``above`` it)."""
        if direction not in (BELOW, ABOVE):
            raise ValueError(f"direction must be {BELOW!r} or {ABOVE!r}")
        key = (threshold, direction)
        known = self._memo.get(key)
        if known is None:
            known = self._memo[key] = self._time_to_cross(threshold, direction)
        return known

    def _first(self, slope: float, threshold: float, below: bool) -> int | None:
        """The first hour ahead at which the projection with ``slope`` is past ``threshold`` (inlined: hot)."""
        level, season, steps = self.level or 0.0, self.season, self.steps
        lo, hi = self.bounds
        multiplicative = self.multiplicative
        for h in range(1, len(self.values) + 1):
            drift = level + slope * steps[h]
            v = season[h] * max(drift, 0.0) if multiplicative else drift + season[h]
            v = min(max(v, lo), hi)
            if (v < threshold) if below else (v > threshold):
                return h
        return None

    def _time_to_cross(self, threshold: float, direction: str) -> Crossing:
        def past(v: float) -> bool:
            return v < threshold if direction == BELOW else v > threshold

        def first(slope: float) -> int | None:
            return self._first(slope, threshold, direction == BELOW)

        if not self.ready or self.trend is None or self.current is None:
            why = self.reason or "no forecast"
            return Crossing(
                threshold=threshold,
                direction=direction,
                hours=None,
                earliest=None,
                latest=None,
                reason=why,
                explanation=why,
            )
        if past(self.current):
            return Crossing(
                threshold=threshold,
                direction=direction,
                hours=0,
                earliest=0,
                latest=0,
                reason=None,
                explanation=f"already {direction} {threshold:g}: {self.current:.1f} now",
                hour=self.issued_after,
            )
        t = self.trend
        adverse, lenient = (t.low, t.high) if direction == BELOW else (t.high, t.low)
        hours = next((h for h, v in enumerate(self.values, start=1) if past(v)), None)
        earliest, latest = first(adverse), first(lenient)
        span = f"{len(self.values)} h"
        if hours is None:
            reason = "no trend" if not t.significant else f"not within {span} at the current trend"
            text = f"{reason} ({t.slope:+.3g} {self.unit}/h, Mann-Kendall z {t.z:+.1f})"
            if earliest is not None:
                text += f"; at the interval's adverse end ({adverse:+.3g}/h) in {earliest} h"
            return Crossing(
                threshold=threshold,
                direction=direction,
                hours=None,
                earliest=earliest,
                latest=None,
                reason=reason,
                explanation=text,
            )
        earliest = hours if earliest is None else min(earliest, hours)
        latest = None if latest is None else max(latest, hours)
        if t.significant:
            why = f"the trend of {t.projected:+.3g} {self.unit}/h"
        elif not self.multiplicative and self.long_level is not None and past(self.long_level):
            why = f"the level returning to its 48-hour median ({self.long_level:.1f})"
        else:
            why = "the daily cycle"
        band = f"{earliest}-{latest} h" if latest is not None else f"{earliest} h to beyond {span}"
        return Crossing(
            threshold=threshold,
            direction=direction,
            hours=hours,
            earliest=earliest,
            latest=latest,
            reason=None,
            explanation=f"{self.metric} {direction} {threshold:g} in {hours} h by {why} (band {band})",
            hour=self.issued_after + timedelta(hours=hours),
        )

    @property
    def explanation(self) -> str:
        """In words: the level and its hours, the trend and its window, the season, the 6 and 24 h projections."""
        if not self.ready or self.current is None or self.level is None:
            return self.reason or "no forecast"
        unit = "%" if self.unit == "points" else " records/h"
        if self.multiplicative:
            level = f"level {self.level:.2f} × usual over the last {self.level_hours} h"
        else:
            level = f"level {self.level:.1f} % over the last {self.level_hours} h"
        t = self.trend
        if t is None or t.blocks == 0:
            trend = "no trend fitted (too few blocks with enough records)"
        else:
            per = "× usual" if self.multiplicative else "points"
            verdict = "projected" if t.significant else "not significant, not projected"
            trend = (
                f"trend {t.slope:+.3g} {per}/h over {t.blocks} blocks of {t.window_from:%Y-%m-%d %H}:00-"
                f"{t.window_to:%H}:00 UTC (Mann-Kendall z {t.z:+.1f}, {verdict}; damped ×{t.damping:g}/h)"
            )
        parts = [f"{self.metric} now {self.current:.1f}{unit} ({level})", trend, f"seasonality: {self.seasonality}"]
        for h in (6, 24):
            if h <= len(self.values):
                p = self.at(h)
                parts.append(f"in {h} h {p.value:.1f}{unit} [{p.low:.1f}-{p.high:.1f}]")
        if not self.calibrated:
            parts.append("band not yet calibrated on this source's own errors")
        return "; ".join(parts)

    def as_dict(self) -> dict[str, object]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 3)

        return {
            "metric": self.metric,
            "unit": self.unit,
            "issued_after": self.issued_after.isoformat(),
            "state": self.state,
            "reason": self.reason,
            "current": r(self.current),
            "level": r(self.level),
            "level_hours": self.level_hours,
            "trend": self.trend.as_dict() if self.trend else None,
            "seasonality": self.seasonality,
            "coverage": self.coverage,
            "calibrated": self.calibrated,
            "path": [
                {
                    "hours_ahead": p.hours_ahead,
                    "hour": p.hour.isoformat(),
                    "value": r(p.value),
                    "low": r(p.low),
                    "high": r(p.high),
                }
                for p in self.path
            ],
            "explanation": self.explanation,
        }
