"""A one-sided CUSUM on a rate's standardised hourly shortfall: slow degradations add up.

A rate sliding down by a few points is 1-2 spreads per hour, under any point threshold, for a day.
The CUSUM ``S = max(0, S − z − slack)`` grows by roughly ``|z| − slack`` per degraded hour and drains
on healthy hours, so a steady 2-spread shortfall crosses a threshold of 8 in about 8 hours while
independent noise stays under it for months. The run (the hours since ``S`` was last 0) is kept as
pooled counts, so a finding can say how far the rate has been below expected over that stretch.
"""

from __future__ import annotations

from dataclasses import dataclass

# One hour's z cannot push more than this: a single collapsed hour is the point rule's business, and
# a huge z would otherwise keep the CUSUM above its threshold for many healthy hours afterwards.
MAX_STEP = 6.0


@dataclass(frozen=True, slots=True)
class Run:
    statistic: float = 0.0
    hours: float = 0.0
    successes: int = 0
    attempts: int = 0
    expected_successes: float = 0.0

    def step(self, *, score: float, slack: float, weight: float, successes: int, attempts: int, p: float) -> Run:
        """The run after one more (``weight`` = share of an hour) observation with standardised ``score``."""
        value = self.statistic - max(score, -MAX_STEP) - slack * weight
        if value <= 0:
            return Run()
        return Run(
            statistic=value,
            hours=self.hours + weight,
            successes=self.successes + successes,
            attempts=self.attempts + attempts,
            expected_successes=self.expected_successes + attempts * p,
        )

    @property
    def drop_points(self) -> float:
        if not self.attempts:
            return 0.0
        return 100.0 * (self.expected_successes - self.successes) / self.attempts
