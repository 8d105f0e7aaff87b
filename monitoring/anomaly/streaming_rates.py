"""The streaming detector's rate rules and the records its rules share (split from ``streaming.py``).

:class:`RateRules` is mixed into :class:`monitoring.anomaly.streaming.StreamingDetector`: per rate, a
shortfall over trailing windows (the current hour plus closed ones, and 8/12/24-hour windows for a
small shift on a small source) and a CUSUM for slow degradations. Pure Python, no Django.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from monitoring.anomaly.config import DEFAULT_SENSITIVITY, StreamingConfig
from monitoring.anomaly.contract import Finding
from monitoring.anomaly.cusum import Run
from monitoring.anomaly.detector import DROP, GEOCODING_SUCCESS_RATE, VALIDATION_PASS_RATE, VOLUME, HourCounts
from monitoring.anomaly.rates import RateBaseline, rate_score
from monitoring.anomaly.seasonal import Slot


@dataclass(slots=True)
class _Closed:
    """A closed hour as the window rules need it: observed, expected and variance per metric."""

    slot: Slot
    volume: int
    volume_expected: float
    volume_variance: float
    rates: dict[str, tuple[int, int, float, float]] = field(default_factory=dict)  # x, n, p, variance
    abnormal: set[str] = field(default_factory=set)  # metrics judged abnormal when the hour closed
    silent_tail: float = 0.0  # records expected in the part of the hour that ended in silence


@dataclass(slots=True)
class _Day:
    """The closed hours of the current local day: observed and expected volume."""

    day: object = None
    observed: float = 0.0
    expected: float = 0.0
    hours: int = 0
    opening: float = 1.0  # observed / expected over the day's first hours (a holiday starts at midnight)


@dataclass(slots=True)
class _Verdict:
    finding: Finding | None
    soft: bool  # abnormal enough to keep out of the baseline


class RateRules:
    config: StreamingConfig
    rates: dict[str, RateBaseline]
    recent: deque[_Closed]
    cusum: dict[str, Run]

    def _judge_rate(
        self, metric: str, x: int, n: int, hour: datetime, slot: Slot, fraction: float, k: float
    ) -> tuple[_Verdict, Run]:
        c = self.config
        baseline = self.rates[metric]
        p = baseline.expected(slot)
        var = baseline.variance(attempts=n, p=p)
        z_now = rate_score(successes=x, attempts=n, p=p, variance=var)
        run = self.cusum[metric].step(score=z_now, slack=c.cusum_slack, weight=fraction, successes=x, attempts=n, p=p)
        if n == 0:
            return _Verdict(None, False), self.cusum[metric]
        observed = 100.0 * x / n
        sd_points = 100.0 * math.sqrt(var) / n
        low = max(100 * p - max(c.min_rate_points, k * sd_points), 0.0)
        high = min(100 * p + k * sd_points, 100.0)
        drop_now = 100 * p - observed
        # Both ways: keeping only the low outliers out would bias the expected rate upwards.
        soft = abs(z_now) >= c.clean_score and abs(drop_now) >= c.min_rate_points / 2

        def found(rule: str, score: float, text: str) -> _Verdict:
            f = _finding(metric, hour, fraction, DROP, observed, 100 * p, low, high, score, rule, text)
            return _Verdict(f, True)

        # The current hour must still be low: a window made low by an earlier hour alone has ended.
        # (On a quiet source one partial hour says little either way: its few records only need to
        # be below expected, which the caller checked.)
        now_low = z_now <= -1.5 or n < c.small_sample
        if drop_now > 0:
            win_x, win_n, win_e, win_var, span = x, n, n * p, var, fraction
            prev_x = prev_n = 0
            prev_e = prev_var = 0.0
            below = 1
            # Once a closed hour in the window was reported, the current hour must be low on its own:
            # the hours after an incident ends would otherwise inherit its shortfall for a window.
            clearly_low = z_now <= -c.now_low_score and drop_now >= c.min_rate_points
            reported = False
            for m in range(len(self.recent) + 1):
                if m:
                    reported = reported or metric in self.recent[-m].abnormal
                    if reported and not clearly_low:
                        break
                    hx, hn, hp, hvar = self.recent[-m].rates.get(metric, (0, 0, p, 0.0))
                    if m > c.max_window_hours and metric in self.recent[-m].abnormal:
                        hx, hn, hp, hvar = 0, 0, p, 0.0  # reported already: a long window looks for what was not
                    win_x, win_n, win_e, win_var, span = (
                        win_x + hx,
                        win_n + hn,
                        win_e + hn * hp,
                        win_var + hvar,
                        span + 1,
                    )
                    prev_x, prev_n, prev_e, prev_var = prev_x + hx, prev_n + hn, prev_e + hn * hp, prev_var + hvar
                    below += hx < hn * hp
                long = m > c.max_window_hours
                if long and (m not in c.long_windows or 2 * below < m + 1):
                    continue  # a long window must be a consistent shift, not one collapsed hour
                if not long and drop_now < c.min_rate_points / 2:
                    continue  # a short window needs this hour visibly low
                points = 100 * (win_e - win_x) / win_n
                if points < c.min_rate_points or win_e - win_x < c.min_rate_items:
                    continue
                z = rate_score(successes=win_x, attempts=win_n, p=win_e / win_n, variance=win_var)
                if m == 0:
                    # One hour alone: a large effect, judged once the hour is mostly in.
                    if fraction < c.single_hour_fraction or z > -k * c.single_hour_factor:
                        continue
                    if points < c.single_hour_points:
                        continue
                elif z > -k or not now_low or (not long and not _low_before(prev_x, prev_n, prev_e, prev_var, c)):
                    continue
                return found(
                    "rate",
                    z,
                    f"{100 * win_x / win_n:.1f} % of {win_n} over the last {span:.2f} h against "
                    f"{100 * win_e / win_n:.1f} % expected ({points:.1f} points below)",
                ), run
        # The threshold scales with the sensitivity like every other rule's.
        threshold = c.cusum_threshold * k / DEFAULT_SENSITIVITY
        if run.statistic >= threshold and run.drop_points >= c.min_rate_points and now_low:
            missing = run.expected_successes - run.successes
            if missing >= c.min_rate_items:
                # The score is the run's pooled shortfall in spreads (hour-to-hour wobble counted once
                # per hour), comparable with the other rules' and graded the same by the alert rule.
                p_run = run.expected_successes / run.attempts
                per_hour = run.attempts / max(run.hours, 1.0)
                variance = run.attempts * p_run * (1 - p_run) * (1 + (per_hour - 1) * baseline.rho)
                pooled = rate_score(successes=run.successes, attempts=run.attempts, p=p_run, variance=variance)
                return found(
                    "cusum",
                    pooled,
                    f"{run.drop_points:.1f} points below expected on average over the last {run.hours:.1f} h "
                    f"({missing:.0f} fewer successes among {run.attempts}); cumulative shortfall "
                    f"{run.statistic:.1f} ≥ {threshold:.1f}",
                ), run
        return _Verdict(None, soft), run


def _low_before(x: int, n: int, e: float, var: float, c: StreamingConfig) -> bool:
    """The closed hours in a window were themselves low: the shortfall did not start this hour."""
    if n == 0:
        return True  # nothing to judge them by (a quiet night); the window's own test decides
    z = rate_score(successes=x, attempts=n, p=e / n, variance=var)
    return 100 * (e - x) / n >= c.min_rate_points / 2 and z <= -2.0


def _rate_counts(counts: HourCounts) -> dict[str, tuple[int, int]]:
    return {
        GEOCODING_SUCCESS_RATE: (counts.geocoding_successes, counts.geocoding_attempts),
        VALIDATION_PASS_RATE: (counts.validation_passes, counts.validation_attempts),
    }


def _finding(
    metric: str,
    hour: datetime,
    fraction: float,
    direction: str,
    observed: float,
    expected: float,
    low: float,
    high: float,
    score: float,
    rule: str,
    text: str,
) -> Finding:
    digits = 0 if metric == VOLUME else 1
    return Finding(
        metric=metric,
        hour=hour,
        fraction=round(fraction, 4),
        direction=direction,
        observed=round(observed, digits),
        expected=round(expected, 1),
        expected_low=round(low, 1),
        expected_high=round(high, 1),
        score=round(score, 2),
        rule=rule,
        explanation=f"{metric} {rule}: {text}",
    )
