"""The expected volume of one source for an hour, learnt in the source's own time zone.

Conflict feeds follow the clock of the region they cover: the news day, the local weekend (Friday and
Saturday in much of the Middle East, Saturday and Sunday elsewhere), daylight-saving shifts. A profile
indexed by UTC hour is an hour off for a week after every clock change; one indexed by local hour and
local weekday is not. Expected volume for an hour = ``profile[local hour] × weekday[local weekday] ×
level``:

- ``profile``: per local hour, the median of the clean hours of the last 14 local days, each divided by
  its weekday factor;
- ``weekday``: per local weekday, the median ratio of that day's hours to the profile (at most four
  occurrences in 28 days; with two, the one nearer the other days' ratio, so one holiday or incident
  day does not teach that a weekday is quiet);
- ``level``: the ratio of the last 48 clean hours to their profile: slow drifts and multi-day news
  cycles move it, so the morning after a news burst is not a drop.

Noise is negative binomial: variance = mean + dispersion × mean², the dispersion estimated from the
clean hours' relative residuals minus their Poisson share. Pure Python, no Django.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

MAD_TO_SD = 1.4826
PROFILE_DAYS = 14
LEVEL_HOURS = 48
PACE_HOURS = 6
Z_90 = 1.6449  # the 90th percentile of |z| for normal noise
MIN_DISPERSION = 0.003  # 5.5 % relative noise at least: no real feed is purely Poisson
MAX_DISPERSION = 1.0


@dataclass(frozen=True, slots=True)
class Slot:
    """Where a UTC hour falls in the source's local week."""

    local_hour: int
    weekday: int
    day: date


class LocalClock:
    def __init__(self, tz: str) -> None:
        self.zone = ZoneInfo(tz)

    def slot(self, hour: datetime) -> Slot:
        local = hour.astimezone(self.zone)
        return Slot(local.hour, local.weekday(), local.date())


@dataclass(slots=True)
class VolumeHour:
    slot: Slot
    value: int
    clean: bool = True
    predicted: float | None = None  # what the baseline expected before seeing it


def _quantile_abs(values: list[float], q: float) -> float:
    ordered = sorted(abs(v) for v in values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def _side(ratio: float, pooled: float) -> int:
    """-1 for a day clearly quieter than the usual day, 1 for one clearly busier, else 0."""
    return -1 if ratio < 0.85 * pooled else 1 if ratio > 1.15 * pooled else 0


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


class VolumeBaseline:
    """Seasonal expected volume and its dispersion, refreshed once per local day (and while young)."""

    def __init__(self, *, history_hours: int) -> None:
        self.hours: deque[VolumeHour] = deque(maxlen=history_hours)
        self.profile: list[float] = [0.0] * 24
        self.weekday: list[float] = [1.0] * 7
        self.level = 1.0
        self.dispersion = 0.05
        self._refreshed_day: date | None = None
        self._refreshed_at = 0

    def add(self, slot: Slot, value: int, *, clean: bool, predicted: float | None = None) -> VolumeHour:
        entry = VolumeHour(slot, value, clean, predicted)
        self.hours.append(entry)
        young = len(self.hours) < 7 * 24 and len(self.hours) - self._refreshed_at >= 6
        if slot.day != self._refreshed_day or young:
            self.refresh()
        self.level = self._level()
        return entry

    def accept(self, hours: int) -> None:
        """The last ``hours`` hours are the new normal after all (a lasting change): train on them."""
        for entry in list(self.hours)[-hours:]:
            entry.clean = True
        self.refresh()
        self.level = self._level()

    def base(self, slot: Slot) -> float:
        return self.profile[slot.local_hour] * self.weekday[slot.weekday]

    def expected(self, slot: Slot) -> float:
        return self.base(slot) * self.level

    def variance(self, expected: float) -> float:
        return expected + self.dispersion * expected * expected

    def refresh(self) -> None:
        self._refreshed_at = len(self.hours)
        self._refreshed_day = self.hours[-1].slot.day if self.hours else None
        # Every hour, abnormal ones included, shapes the profile: medians over 14 days (and over up to
        # four occurrences of a weekday) ignore an incident day, and leaving flagged hours out would let
        # a profile learnt wrong on day one exclude the very hours that would correct it. Abnormal hours
        # stay out of the level and the dispersion.
        days: dict[date, list[VolumeHour]] = {}
        for entry in self.hours:
            days.setdefault(entry.slot.day, []).append(entry)
        recent = sorted(days)[-PROFILE_DAYS:]
        by_hour: list[list[float]] = [[] for _ in range(24)]
        for day in recent:
            for entry in days[day]:
                by_hour[entry.slot.local_hour].append(entry.value)
        overall = _median([v for values in by_hour for v in values])
        rough = [_median(values) if values else overall for values in by_hour]
        # Weekday factors: each complete-enough day's median ratio to the rough profile.
        ratios: list[list[float]] = [[] for _ in range(7)]
        for day in sorted(days)[-28:]:
            # A day that was mostly abnormal (an outage, a long drop) says nothing about its weekday.
            entries = [e for e in days[day] if rough[e.slot.local_hour] > 0 and e.clean]
            if len(entries) >= 12:
                ratios[entries[0].slot.weekday].append(_median([e.value / rough[e.slot.local_hour] for e in entries]))
        pooled = _median([r for rs in ratios for r in rs]) or 1.0
        weekday = []
        for day, rs in enumerate(ratios):
            if len(rs) == 1:
                # One occurrence is trusted only when a neighbouring day looks alike (a weekend is two
                # days; a holiday is usually one): a holiday in the first week must not teach that its
                # weekday is quiet.
                neighbours = [ratios[(day - 1) % 7], ratios[(day + 1) % 7]]
                side = _side(rs[0], pooled)
                alike = any(
                    n
                    and (
                        abs(n[-1] - rs[0]) <= 0.15 * max(rs[0], n[-1])
                        or (side and _side(n[-1], pooled) == side and max(rs[0], n[-1]) <= 1.6 * min(rs[0], n[-1]))
                    )
                    for n in neighbours
                )
                weekday.append(rs[0] if alike or abs(rs[0] - pooled) <= 0.15 * pooled else pooled)
            elif not rs:
                weekday.append(pooled)
            elif len(rs) == 2:
                weekday.append(min(rs, key=lambda r: abs(r - pooled)))
            else:
                weekday.append(_median(rs))
        norm = _median(weekday) or 1.0
        self.weekday = [w / norm for w in weekday]
        by_hour = [[] for _ in range(24)]
        for day in recent:
            for entry in days[day]:
                factor = self.weekday[entry.slot.weekday]
                if factor > 0:
                    by_hour[entry.slot.local_hour].append(entry.value / factor)
        overall = _median([v for values in by_hour for v in values])
        self.profile = [_median(values) if values else overall for values in by_hour]
        self.dispersion = self._dispersion(days=days, recent=recent)

    def _dispersion(self, *, days: dict[date, list[VolumeHour]], recent: list[date]) -> float:
        """Relative noise beyond Poisson, from the baseline's own prediction errors on clean hours.

        The errors of past predictions hold everything the next one will suffer (noise, a profile
        that is slightly off, a level that lags), so the score is calibrated against them. The
        spread is read from the 90th percentile of the absolute errors, not the MAD: hourly volume is
        skewed and heavy-tailed, and the tail is what raises false alarms.
        """
        relative, poisson = [], []
        for entry in list(self.hours)[-PROFILE_DAYS * 24 :]:
            if entry.clean and entry.predicted is not None and entry.predicted >= 5:
                relative.append(entry.value / entry.predicted - 1)
                poisson.append(1 / entry.predicted)
        if len(relative) < 48:
            return 0.05
        spread = _quantile_abs(relative, 0.9) / Z_90
        return min(max(spread * spread - statistics.median(poisson), MIN_DISPERSION), MAX_DISPERSION)

    def recent_pace(self) -> float:
        """The median ratio of the last six clean hours to their expectation: today's news pace."""
        ratios = []
        for entry in reversed(self.hours):
            if entry.clean:
                base = self.base(entry.slot) * self.level
                if base >= 1:
                    ratios.append(entry.value / base)
                if len(ratios) >= PACE_HOURS:
                    break
        return _median(ratios) if len(ratios) >= PACE_HOURS else 1.0

    def _level(self) -> float:
        observed = expected = 0.0
        taken = 0
        for entry in reversed(self.hours):
            if not entry.clean:
                continue
            observed += entry.value
            expected += self.base(entry.slot)
            taken += 1
            if taken >= LEVEL_HOURS:
                break
        if expected <= 0:
            return 1.0
        # Shrunk towards 1 with little evidence: a quiet source's 48 hours say little about its level.
        weight = expected / (expected + 50.0)
        return min(max(1.0 + weight * (observed / expected - 1.0), 0.0), 5.0)


def volume_score(observed: float, expected: float, variance: float) -> float:
    """Signed root of the negative-binomial deviance of ``observed`` records against ``expected``.

    Volume noise is partly multiplicative (a busy hour wobbles by a share of itself) and a count cannot
    go below zero, so a raw z is lopsided: it calls a drop to a third of 110 records 3 spreads, when a
    gamma-Poisson count almost never falls that far, and it exaggerates spikes. The deviance residual
    is close to normal on both sides; ``dispersion`` is read from ``variance = mean + dispersion·mean²``.
    """
    if expected <= 0:
        return 0.0
    y, mu = max(observed, 0.0), expected
    dispersion = max((variance - mu) / (mu * mu), 1e-6)
    deviance = -(y + 1 / dispersion) * math.log((1 + dispersion * y) / (1 + dispersion * mu))
    if y > 0:
        deviance += y * math.log(y / mu)
    root = math.sqrt(max(2.0 * deviance, 0.0))
    return root if y >= mu else -root


ARRIVAL_BINS = 20  # fractions of the hour are learnt in steps of 1/20
ARRIVAL_MIN_HOURS = 24  # closed hours with a partial view at a fraction before its curve is trusted
ARRIVAL_MIN_ITEMS = 20  # an hour with fewer records says more about counting noise than about timing
ARRIVAL_QUANTILES = (0.1, 0.5, 0.9)


class ArrivalCurve:
    """What share of an hour's records has usually arrived by a given share of the hour.

    A streaming source has about half its records at half past; a source that posts one batch at
    :10 has all of them by a quarter past, one posting at :50 none by three quarters past. Judging a
    partial hour against ``expected × elapsed fraction`` calls the first a flood every hour and the
    second an outage. The curve is learnt from the partial views the caller showed
    (:meth:`note`, from ``judge_partial``), folded in when the hour closes (:meth:`close`), so only
    the judgement of partial hours depends on it. Per fraction bin it keeps the recent shares and
    reads their 10th, 50th and 90th percentiles: a drop is judged against the low one (a batch
    split over two quarters is not a shortfall), a flood against the high one. Until a bin has
    ``ARRIVAL_MIN_HOURS`` hours the curve admits it does not know: (0, fraction, 1), so nothing is
    called short and a flood must exceed a whole hour's expectation.
    """

    def __init__(self, *, history_hours: int) -> None:
        self.shares: list[deque[float]] = [deque(maxlen=history_hours) for _ in range(ARRIVAL_BINS + 1)]
        self._bounds: list[tuple[float, float, float] | None] = [None] * (ARRIVAL_BINS + 1)
        self._stale: set[int] = set()
        self._pending: dict[int, int] = {}
        self._pending_hour: datetime | None = None

    @staticmethod
    def _bin(fraction: float) -> int:
        return min(max(round(fraction * ARRIVAL_BINS), 0), ARRIVAL_BINS)

    def note(self, hour: datetime, fraction: float, arrived: int) -> None:
        """Remember what had arrived by ``fraction`` of ``hour`` (learnt only once the hour closes)."""
        if hour != self._pending_hour:
            self._pending, self._pending_hour = {}, hour
        self._pending[self._bin(fraction)] = arrived

    def close(self, hour: datetime, total: int) -> float:
        """Learn from the closed ``hour``; returns the share of it that was silent at its end.

        ``silent_since`` is the earliest fraction by which every record of the hour had arrived, as far
        as the partial views show (0.0 for an empty hour, 1.0 when records came in its last part or
        nothing was shown).
        """
        silent_since = 1.0
        if hour == self._pending_hour:
            for b, arrived in sorted(self._pending.items()):
                if arrived >= total and 0 < b < ARRIVAL_BINS:
                    silent_since = b / ARRIVAL_BINS
                    break
            if total >= ARRIVAL_MIN_ITEMS:
                for b, arrived in self._pending.items():
                    if 0 < b < ARRIVAL_BINS:
                        self.shares[b].append(min(arrived / total, 1.0))
                        self._stale.add(b)
        self._pending, self._pending_hour = {}, None
        return 0.0 if total == 0 else silent_since

    def known(self, fraction: float) -> bool:
        self.bounds(fraction)
        return fraction >= 1.0 or self._bounds[self._bin(fraction)] is not None

    def bounds(self, fraction: float) -> tuple[float, float, float]:
        """(low, typical, high) share of the hour's records that has arrived by ``fraction``."""
        if fraction >= 1.0:
            return 1.0, 1.0, 1.0
        b = self._bin(fraction)
        if b in self._stale:
            self._stale.discard(b)
            shares = sorted(self.shares[b])
            self._bounds[b] = (
                tuple(shares[min(int(q * len(shares)), len(shares) - 1)] for q in ARRIVAL_QUANTILES)
                if len(shares) >= ARRIVAL_MIN_HOURS
                else None
            )
        known = self._bounds[b]
        return known if known is not None else (0.0, fraction, 1.0)
