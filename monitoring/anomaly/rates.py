"""The expected success rate of one pipeline stage and its beta-binomial noise.

A rate from 38 records is not a rate from 3,800: binomial noise alone is ±5 points at n=38, p=0.9.
Real rates also wobble from hour to hour beyond that (a batch of hard place names), which a binomial
model calls a certainty at large n. The beta-binomial covers both: the variance of ``successes`` out of
``n`` is ``n·p·(1−p)·(1 + (n−1)·rho)``, with ``rho`` (the intra-hour correlation) learnt from the clean
hours. A small hour is judged by its binomial noise, a large one by the wobble.

Expected rate = the pooled rate of the last 72 clean hours (successes / attempts, so quiet hours weigh
little) plus the local hour's median offset from it over 14 days (night batches from other regions
geocode differently). Pure Python, no Django.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass

from monitoring.anomaly.seasonal import Slot

POOL_HOURS = 72
OFFSET_HOURS = 14 * 24
CHI2_1_Q90 = 2.7055  # 90th percentile of a chi-square with one degree of freedom
MIN_RHO = 2e-5
MAX_RHO = 0.05
# Until this many hours have calibrated it, rho is a cautious guess: rates from a few hundred records
# and more wobble several times their binomial noise on most real feeds.
RHO_MIN_HOURS = 24
DEFAULT_RHO = 0.01


@dataclass(slots=True)
class RateHour:
    slot: Slot
    successes: int
    attempts: int
    clean: bool = True
    predicted: float | None = None  # the rate expected before seeing the hour


class RateBaseline:
    def __init__(self, *, history_hours: int) -> None:
        self.hours: deque[RateHour] = deque(maxlen=history_hours)
        self.offsets = [0.0] * 24
        self.pooled = 0.9
        self.rho = DEFAULT_RHO
        self._refresh_every = 24
        self._since_refresh = 10**9

    def add(
        self, slot: Slot, successes: int, attempts: int, *, clean: bool, predicted: float | None = None
    ) -> RateHour:
        entry = RateHour(slot, successes, attempts, clean, predicted)
        self.hours.append(entry)
        self._since_refresh += 1
        if self._since_refresh >= (6 if len(self.hours) < 7 * 24 else self._refresh_every):
            self.refresh()
        self.pooled = self._pooled()
        return entry

    def accept(self, hours: int) -> None:
        """The last ``hours`` hours are the new normal after all (a lasting change): train on them."""
        for entry in list(self.hours)[-hours:]:
            entry.clean = True
        self.refresh()
        self.pooled = self._pooled()

    def expected(self, slot: Slot) -> float:
        return min(max(self.pooled + self.offsets[slot.local_hour], 0.001), 0.999)

    def variance(self, *, attempts: int, p: float) -> float:
        """Variance of the successes among ``attempts``."""
        return attempts * p * (1 - p) * (1 + (attempts - 1) * self.rho)

    @property
    def sample_hours(self) -> int:
        return sum(1 for e in self.hours if e.attempts > 0)

    def _pooled(self) -> float:
        successes = attempts = 0.0
        taken = 0
        for entry in reversed(self.hours):
            if entry.clean and entry.attempts:
                offset = self.offsets[entry.slot.local_hour]
                successes += entry.successes - offset * entry.attempts
                attempts += entry.attempts
                taken += 1
                if taken >= POOL_HOURS:
                    break
        if attempts <= 0:
            return self.pooled
        return min(max(successes / attempts, 0.001), 0.999)

    def refresh(self) -> None:
        self._since_refresh = 0
        recent = [e for e in list(self.hours)[-OFFSET_HOURS:] if e.attempts and e.clean]
        if not recent:
            return
        total = sum(e.successes for e in recent) / sum(e.attempts for e in recent)
        # Per local hour, the median over the days of that hour's rate minus the total, from every
        # hour (a median over at least three days ignores one incident day; leaving abnormal hours out
        # would let an offset learnt from one lucky hour exclude the hours that would correct it),
        # then shrunk towards 0 by its sampling error (positive-part James-Stein): a quiet source's
        # hour-of-day offsets are mostly noise, and noise in the expected rate costs the detector power.
        by_hour: list[list[float]] = [[] for _ in range(24)]
        sizes_by_hour = [0] * 24
        for e in list(self.hours)[-OFFSET_HOURS:]:
            if e.attempts >= 20:
                by_hour[e.slot.local_hour].append(e.successes / e.attempts - total)
                sizes_by_hour[e.slot.local_hour] += e.attempts
        offsets = []
        for values, size in zip(by_hour, sizes_by_hour, strict=True):
            if len(values) < 3:
                offsets.append(0.0)
                continue
            offset = statistics.median(values)
            noise = math.pi / 2 * total * (1 - total) / size * (1 + self.rho * size / len(values))
            offsets.append(offset * max(0.0, 1 - noise / offset**2) if offset else 0.0)
        self.offsets = offsets
        # Overdispersion from the baseline's own prediction errors (noise plus a baseline slightly
        # off), read at the 90th percentile of the squared standardised errors against a
        # chi-square's: robust to a few incident hours, but not blind to a heavy tail.
        squares, sizes = [], []
        for e in recent:
            if e.attempts < 2 or e.predicted is None:
                continue
            p = e.predicted
            squares.append((e.successes - e.attempts * p) ** 2 / (e.attempts * p * (1 - p)))
            sizes.append(e.attempts - 1)
        if len(squares) >= RHO_MIN_HOURS:
            self.rho = calibrate_rho(squares, sizes)


def calibrate_rho(squares: list[float], sizes: list[int]) -> float:
    """The overdispersion ``rho`` under which the squared standardised errors look like a chi-square.

    ``squares`` are the hours' squared binomial z's, ``sizes`` their attempts − 1. Under a beta-binomial
    each square is ``(1 + size·rho)`` times a chi-square with one degree of freedom, so ``rho`` is
    chosen (by bisection) so that the 90th percentile of ``square / (1 + size·rho)`` is the
    chi-square's. Unlike one inflation for the median size, this weighs a night of 20 records and a
    day of 2,000 each by its own size: real rates wobble from hour to hour beyond binomial noise
    (a batch of hard place names), and that wobble dominates large hours.

    Solved directly rather than by search: an hour is above the chi-square's percentile exactly while
    ``rho`` is below its own crossing point ``(square / q − 1) / size``, and the 90th percentile is above
    it while at least a tenth of the hours are, so the answer is the crossing point that leaves that
    tenth above: one sort instead of a bisection of sorts (this runs for every rate of every source
    once a day, inside a broadcaster tick).
    """
    n = len(squares)
    if not n:
        return MIN_RHO
    # The percentile index used throughout: sorted(values)[int(0.9 n)] (above it: n − int(0.9 n) hours).
    above_needed = n - int(0.9 * n)
    crossings = sorted(
        ((sq / CHI2_1_Q90 - 1.0) / size if size > 0 else (math.inf if sq > CHI2_1_Q90 else -math.inf))
        for sq, size in zip(squares, sizes, strict=True)
    )
    # The hours above the percentile at a given rho are those whose crossing point is beyond it.
    threshold = crossings[n - above_needed]
    return min(max(threshold, MIN_RHO), MAX_RHO)


def rate_score(*, successes: float, attempts: int, p: float, variance: float) -> float:
    """Standardised shortfall of ``successes`` among ``attempts`` (negative: fewer than expected).

    The signed root of the binomial deviance, divided by the beta-binomial inflation
    ``sqrt(variance / binomial variance)``: near 100 % a binomial is skewed, and a normal z turns
    three failures among 15 records at an expected 97 % into a ten-sigma event.
    """
    if attempts <= 0 or variance <= 0:
        return 0.0
    x, n = min(max(successes, 0.0), float(attempts)), float(attempts)
    expected = n * p
    deviance = 0.0
    if x > 0:
        deviance += x * math.log(x / expected)
    if n - x > 0:
        deviance += (n - x) * math.log((n - x) / (n - expected))
    root = math.sqrt(max(2.0 * deviance, 0.0))
    inflation = math.sqrt(variance / (n * p * (1 - p)))
    return (root if x >= expected else -root) / inflation
