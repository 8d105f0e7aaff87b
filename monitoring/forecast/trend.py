"""A robust local trend: Theil-Sen slope of pooled blocks, Mann-Kendall significance, damped projection.

Why these: an hourly rate from a few dozen records is noisy, and one glitch hour or an outage in the
window would tip a least-squares slope. Pooling hours into blocks (successes / attempts, records /
expected) lets quiet hours weigh little; the Theil-Sen slope (the median of the pairwise slopes) ignores
up to 29 % of wild blocks; the Mann-Kendall statistic (how many block pairs go up versus down) says
whether there is a trend at all, without assuming normal noise. A projected trend is damped
(Gardner-McKenzie): a slide is assumed to slow, so a step inside the window is not extrapolated for ever.

Pure Python, no Django.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

_STANDARD = NormalDist()


@dataclass(frozen=True, slots=True)
class Block:
    """A run of consecutive hours pooled into one point: its centre (hours, on the caller's axis)."""

    centre: float
    value: float
    sample: float  # attempts (rates) or expected records (volume) behind the value


@dataclass(frozen=True, slots=True)
class Fit:
    """Theil-Sen slope per hour with its confidence interval, and the Mann-Kendall z."""

    slope: float
    low: float  # the interval's lower end (Sen's method at the configured coverage)
    high: float
    z: float  # Mann-Kendall: positive for a rising series
    blocks: int


def pool(hours: Sequence[tuple[float, float, float]], *, block_hours: int, min_sample: float) -> list[Block]:
    """Pool ``(position, numerator, denominator)`` hours into blocks of ``block_hours``, newest last.

    Blocks are cut from the newest hour backwards, so the last block always ends at the last closed
    hour. A block is numerator / denominator, dropped when its denominator is under ``min_sample``.
    """
    blocks: list[Block] = []
    num = den = pos = 0.0
    size = 0
    # One pass from the newest hour back; a block closes every ``block_hours`` hours.
    for position, n, d in reversed(hours):
        num, den, pos, size = num + n, den + d, pos + position, size + 1
        if size == block_hours:
            if den >= min_sample and den > 0:
                blocks.append(Block(pos / size, num / den, den))
            num = den = pos = 0.0
            size = 0
    if size and den >= min_sample and den > 0:
        blocks.append(Block(pos / size, num / den, den))
    blocks.reverse()
    return blocks


def mann_kendall_z(values: Sequence[float]) -> float:
    """The Mann-Kendall z of a series in time order (continuity-corrected, no tie correction)."""
    n = len(values)
    if n < 3:
        return 0.0
    s = 0
    for i in range(n - 1):
        vi = values[i]
        for j in range(i + 1, n):
            d = values[j] - vi
            s += (d > 0) - (d < 0)
    return _mk_z(s, n)


def _mk_z(s: int, n: int) -> float:
    if s == 0:
        return 0.0
    return (s - math.copysign(1, s)) / math.sqrt(n * (n - 1) * (2 * n + 5) / 18.0)


def theil_sen(blocks: Sequence[Block], *, coverage: float) -> Fit | None:
    """Median pairwise slope, Sen's confidence interval at ``coverage``, and the Mann-Kendall z."""
    n = len(blocks)
    if n < 3:
        return None
    slopes = []
    s = 0  # the Mann-Kendall statistic, counted in the same pass
    for i in range(n - 1):
        ci, vi = blocks[i].centre, blocks[i].value
        for j in range(i + 1, n):
            bj = blocks[j]
            d = bj.value - vi
            s += (d > 0) - (d < 0)
            dx = bj.centre - ci
            if dx > 0:
                slopes.append(d / dx)
    if not slopes:
        return None
    slopes.sort()
    m = len(slopes)
    middle = (slopes[(m - 1) // 2] + slopes[m // 2]) / 2
    # Sen (1968): the interval runs between the ranks (N ∓ z·sd(S)) / 2 of the sorted slopes.
    z_band = normal_quantile(0.5 + coverage / 2)
    spread = z_band * math.sqrt(n * (n - 1) * (2 * n + 5) / 18.0)
    lo_rank = max(int((m - spread) / 2), 0)
    hi_rank = min(int(math.ceil((m + spread) / 2)), m - 1)
    return Fit(
        slope=middle,
        low=slopes[lo_rank],
        high=slopes[hi_rank],
        z=_mk_z(s, n),
        blocks=n,
    )


def damped_steps(*, damping: float, horizon: int) -> list[float]:
    """``steps[h]`` = Σ_{k=1..h} damping^k: how many hours of the current slope reach ``h`` hours ahead."""
    steps = [0.0]
    total, factor = 0.0, 1.0
    for _ in range(horizon):
        factor *= damping
        total += factor
        steps.append(total)
    return steps


def normal_quantile(p: float) -> float:
    """The standard normal quantile."""
    return _STANDARD.inv_cdf(p)
