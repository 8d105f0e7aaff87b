"""Count samplers on the standard library's ``random`` (no NumPy in the venv) and per-hour streams.

Every (seed, source, hour) gets its own generator, so an incident changes the draws of the hours it
touches and no others: the per-kind data sets share their background with the mixed one exactly.
"""

from __future__ import annotations

import math
import random

_NORMAL_POISSON = 60.0  # above this mean the normal approximation of a Poisson count is indistinguishable
_NORMAL_BINOMIAL = 25.0  # ditto for n·min(p, 1−p) of a binomial


def stream(*parts: int) -> random.Random:
    """A generator seeded by integers (seed, purpose, source, hour...), independent of call order."""
    value = 0x9E3779B1
    for part in parts:
        value = (value * 1_000_003 + part + 0x632BE5AB) % (1 << 61)
    return random.Random(value)


def poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0.0:
        return 0
    if mean > _NORMAL_POISSON:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    # Inversion: one uniform, walk the CDF.
    u = rng.random()
    k = 0
    prob = math.exp(-mean)
    cdf = prob
    while u > cdf and k < 10_000:
        k += 1
        prob *= mean / k
        cdf += prob
    return k


def binomial(rng: random.Random, n: int, p: float) -> int:
    if n <= 0 or p <= 0.0:
        return 0
    if p >= 1.0:
        return n
    if p > 0.5:
        return n - binomial(rng, n, 1.0 - p)
    mean = n * p
    if mean > _NORMAL_BINOMIAL:
        return min(n, max(0, round(rng.gauss(mean, math.sqrt(mean * (1.0 - p))))))
    # Waiting times between successes: O(n·p) uniforms.
    log_q = math.log1p(-p)
    position = -1
    successes = -1
    while position < n:
        successes += 1
        position += 1 + int(math.log(1.0 - rng.random()) / log_q)
    return successes


def gamma_factor(rng: random.Random, shape: float) -> float:
    """A mean-1 gamma multiplier: with a Poisson count on top it makes a negative binomial."""
    return rng.gammavariate(shape, 1.0 / shape)


def beta_rate(rng: random.Random, p: float, concentration: float) -> float:
    """One hour's success probability around ``p`` (beta-binomial overdispersion)."""
    p = min(max(p, 1e-3), 1.0 - 1e-3)
    return rng.betavariate(p * concentration, (1.0 - p) * concentration)


def split(rng: random.Random, total: int, weights: tuple[float, ...]) -> list[int]:
    """Multinomial split of ``total`` over ``weights`` (sequential binomials)."""
    parts = []
    remaining = total
    mass = sum(weights)
    for weight in weights[:-1]:
        share = weight / mass if mass > 0 else 0.0
        part = binomial(rng, remaining, min(share, 1.0))
        parts.append(part)
        remaining -= part
        mass -= weight
    parts.append(remaining)
    return parts
