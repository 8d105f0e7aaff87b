"""Uncertainty bands from the forecaster's own past errors, per horizon: calibrated, not assumed normal.

Every closed hour the forecaster projects the hours ahead; when one of those hours closes, the error of
each projection that named it is standardised (divided by the noise the metric's own model expects for
that hour: negative-binomial for volume, beta-binomial for rates) and kept per horizon. A band is the
empirical 10th and 90th percentile of the standardised errors at that horizon, scaled back by the
target hour's expected noise. Errors at 24 hours ahead hold everything a 24-hour forecast suffers (the
trend wandering, news cycles, weekday factors slightly off), which no formula for the noise alone
captures, and real errors are skewed (a volume can collapse to zero, it rarely quadruples).

Pure Python, no Django.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Sequence

from monitoring.forecast.trend import normal_quantile


class RollingQuantiles:
    """Quantiles of the last ``size`` values: a ring of arrivals beside one sorted list.

    Insertion and removal are a bisect and a memmove (C speed on a few hundred floats), so a quantile
    is read in O(1) and kept up to date every hour without re-sorting.
    """

    def __init__(self, *, size: int) -> None:
        self.order: deque[float] = deque()
        self.sorted: list[float] = []
        self.size = size

    def __len__(self) -> int:
        return len(self.order)

    def add(self, value: float) -> None:
        if len(self.order) >= self.size:
            old = self.order.popleft()
            del self.sorted[bisect.bisect_left(self.sorted, old)]
        self.order.append(value)
        bisect.insort(self.sorted, value)

    def quantile(self, q: float) -> float:
        """Linear interpolation between the order statistics (type 7, like numpy's default)."""
        values = self.sorted
        if not values:
            raise ValueError("no values")
        position = q * (len(values) - 1)
        below = int(position)
        above = min(below + 1, len(values) - 1)
        return values[below] + (values[above] - values[below]) * (position - below)


class ErrorBook:
    """Standardised past errors of one metric's forecasts, per horizon, and the band they imply."""

    def __init__(self, *, horizons: Sequence[int], size: int, coverage: float, min_errors: int) -> None:
        self.horizons = tuple(sorted(horizons))
        self.errors = {h: RollingQuantiles(size=size) for h in self.horizons}
        self.lower_q = (1 - coverage) / 2
        self.upper_q = 1 - self.lower_q
        self.min_errors = min_errors
        # A stand-in until enough errors are in: a normal band widening like a random walk of the level.
        self._z = normal_quantile(self.upper_q)
        self._brackets: list[tuple[int, int, float]] = [(self.horizons[0], self.horizons[0], 0.0)]

    def add(self, *, horizon: int, error: float) -> None:
        self.errors[horizon].add(error)

    def calibrated(self, horizon: int) -> bool:
        return len(self.errors[self._nearest_at_least(horizon)]) >= self.min_errors

    def band(self, horizon: int) -> tuple[float, float]:
        """(lower, upper) standardised offsets for ``horizon`` hours ahead, interpolated between horizons."""
        low_h, high_h = self._bracket(horizon)
        low = self._offsets(low_h)
        if high_h == low_h:
            return low
        high = self._offsets(high_h)
        w = (horizon - low_h) / (high_h - low_h)
        return low[0] + w * (high[0] - low[0]), low[1] + w * (high[1] - low[1])

    def bands(self, horizon: int) -> list[tuple[float, float]]:
        """``band(h)`` for h = 0..``horizon`` (index 0 unused), reading each horizon's quantiles once."""
        while len(self._brackets) <= horizon:
            h = len(self._brackets)
            low_h, high_h = self._bracket(h)
            self._brackets.append((low_h, high_h, (h - low_h) / (high_h - low_h) if high_h != low_h else 0.0))
        offsets = {h: self._offsets(h) for h in self.horizons}
        out = [(0.0, 0.0)]
        for low_h, high_h, w in self._brackets[1 : horizon + 1]:
            (a, b), (c, d) = offsets[low_h], offsets[high_h]
            out.append((a + w * (c - a), b + w * (d - b)))
        return out

    def _offsets(self, horizon: int) -> tuple[float, float]:
        book = self.errors[horizon]
        if len(book) < self.min_errors:
            widening = (1.0 + horizon / 6.0) ** 0.5
            return -self._z * widening, self._z * widening
        return book.quantile(self.lower_q), book.quantile(self.upper_q)

    def _bracket(self, horizon: int) -> tuple[int, int]:
        hs = self.horizons
        if horizon <= hs[0]:
            return hs[0], hs[0]
        if horizon >= hs[-1]:
            return hs[-1], hs[-1]
        i = bisect.bisect_left(hs, horizon)
        if hs[i] == horizon:
            return horizon, horizon
        return hs[i - 1], hs[i]

    def _nearest_at_least(self, horizon: int) -> int:
        i = bisect.bisect_left(self.horizons, horizon)
        return self.horizons[min(i, len(self.horizons) - 1)]
