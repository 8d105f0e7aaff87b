"""The "will cross within N hours" warning, transport-free: the rule logic with its hysteresis.

One :class:`CrossingWarning` per source, metric and threshold, updated once per closed hour with that
hour's forecast. It turns on when the forecast's **central projection** (level plus the significant,
damped trend, plus the season) crosses the threshold within ``within_hours`` while the current value
is still on the good side; the threshold rule takes over once the value is past it.

Why the central projection and not a band edge: the 80 % band of an hourly value holds that hour's
sampling noise, so for any source sitting a few points above its threshold the lower edge is below it
every hour, trend or none: a band-edge rule warns all the time on exactly the sources where a warning
is worth least. The central projection moves only with a trend the Mann-Kendall test accepts (or
with the daily cycle), i.e. "at the current trend" as the issue asks. The development seeds'
comparison of both (and of the slope interval's adverse end) is in ``docs/forecasting.md``.

Hysteresis, so that a slide that wobbles does not flap: once on, the warning stays on while a
crossing is projected within ``release_factor`` × ``within_hours``, and it turns off only after
``release_hours`` consecutive hours without one (or at once when the threshold is crossed, or the
forecast is no longer ready).

Pure Python, no Django.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from monitoring.forecast.result import ABOVE, BELOW, Crossing, Forecast

CENTRAL = "central"
EARLIEST = "earliest"  # the adverse end of the slope's interval (more warnings, earlier, less precise)
BAND = "band"  # the hourly band's bad edge: kept for comparison, not recommended (see above)
POLICIES = (CENTRAL, EARLIEST, BAND)


@dataclass(frozen=True, kw_only=True)
class WarningPolicy:
    within_hours: int = 24
    edge: str = CENTRAL
    release_factor: float = 1.5
    release_hours: int = 3
    # Only a crossing the significant trend brings warns (not the daily cycle or reversion alone).
    require_trend: bool = False
    # Only a crossing that even the lenient end of the slope's interval reaches within the forecast's
    # horizon warns (the crossing is likely, not just possible).
    require_confident: bool = False

    def __post_init__(self) -> None:
        if self.edge not in POLICIES:
            raise ValueError(f"edge must be one of {', '.join(POLICIES)}")
        if self.within_hours < 1 or self.release_factor < 1 or self.release_hours < 1:
            raise ValueError("within_hours and release_hours must be ≥ 1, release_factor ≥ 1")


@dataclass(frozen=True, kw_only=True)
class WarningState:
    active: bool
    changed: bool  # turned on or off at this update
    since: datetime | None  # when the current warning turned on
    crossing: Crossing | None
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {
            "active": self.active,
            "changed": self.changed,
            "since": self.since.isoformat() if self.since else None,
            "crossing": self.crossing.as_dict() if self.crossing else None,
            "reason": self.reason,
        }


@dataclass(kw_only=True)
class CrossingWarning:
    """The rule state for one source, metric and threshold (``direction``: the bad side)."""

    threshold: float
    direction: str = BELOW
    policy: WarningPolicy = field(default_factory=WarningPolicy)
    active: bool = False
    since: datetime | None = None
    quiet_hours: int = 0

    def __post_init__(self) -> None:
        if self.direction not in (BELOW, ABOVE):
            raise ValueError(f"direction must be {BELOW!r} or {ABOVE!r}")

    def _past(self, value: float) -> bool:
        return value < self.threshold if self.direction == BELOW else value > self.threshold

    def update(self, *, forecast: Forecast, current: float | None = None) -> WarningState:
        """Judge the forecast issued after the hour that just closed.

        ``current`` is the value the threshold rule judges now (for example the rate over the alert
        rule's window); without it the forecast's own current level stands in.
        """
        was = self.active
        if not forecast.ready:
            return self._off(was, None, forecast.reason or "no forecast")
        now = forecast.current if current is None else current
        if now is None or self._past(now):
            return self._off(was, None, f"already {self.direction} {self.threshold:g}: the threshold rule's case")
        crossing = forecast.time_to_cross(threshold=self.threshold, direction=self.direction)
        p = self.policy
        untrended = forecast.trend is None or not forecast.trend.significant
        if (p.require_trend and untrended) or (p.require_confident and crossing.latest is None):
            hours = None
        elif p.edge == CENTRAL:
            hours = crossing.hours
        elif p.edge == EARLIEST:
            hours = crossing.earliest
        else:
            edge = forecast.lows if self.direction == BELOW else forecast.highs
            hours = next((h for h, v in enumerate(edge, start=1) if self._past(v)), None)
        if hours is not None and hours <= p.within_hours:
            self.quiet_hours = 0
            if not was:
                self.active, self.since = True, forecast.issued_after
            return WarningState(
                active=True, changed=not was, since=self.since, crossing=crossing, reason=crossing.explanation
            )
        if was:
            if hours is not None and hours <= p.release_factor * p.within_hours:
                self.quiet_hours = 0
                return WarningState(
                    active=True,
                    changed=False,
                    since=self.since,
                    crossing=crossing,
                    reason=f"held: {crossing.explanation}",
                )
            self.quiet_hours += 1
            if self.quiet_hours < p.release_hours:
                return WarningState(
                    active=True,
                    changed=False,
                    since=self.since,
                    crossing=crossing,
                    reason=f"held ({self.quiet_hours} of {p.release_hours} quiet hours): {crossing.explanation}",
                )
        return self._off(was, crossing, crossing.explanation)

    def _off(self, was: bool, crossing: Crossing | None, reason: str) -> WarningState:
        self.active, self.since, self.quiet_hours = False, None, 0
        return WarningState(active=False, changed=was, since=None, crossing=crossing, reason=reason)
