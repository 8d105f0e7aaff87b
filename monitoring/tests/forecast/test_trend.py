"""The robust trend: pooled blocks, Theil-Sen slope and interval, Mann-Kendall z, damped steps."""

import random

import pytest

from monitoring.forecast.trend import Block, damped_steps, mann_kendall_z, normal_quantile, pool, theil_sen


def _blocks(values, *, spacing=3.0):
    return [Block(centre=i * spacing, value=v, sample=100.0) for i, v in enumerate(values)]


def test_theil_sen_recovers_the_slope_of_a_straight_line():
    fit = theil_sen(_blocks([90.0 - 0.9 * i for i in range(8)]), coverage=0.8)
    assert fit.slope == pytest.approx(-0.3)
    assert fit.low == pytest.approx(-0.3) and fit.high == pytest.approx(-0.3)
    assert fit.z < -3


def test_one_wild_block_does_not_tip_the_slope():
    values = [90.0 - 0.9 * i for i in range(8)]
    values[5] = 20.0  # an outage-like block
    fit = theil_sen(_blocks(values), coverage=0.8)
    assert fit.slope == pytest.approx(-0.3, abs=0.05)


def test_flat_noise_has_a_small_mann_kendall_z_and_an_interval_around_zero():
    rng = random.Random(3)
    zs = []
    for _ in range(200):
        values = [90 + rng.gauss(0, 1) for _ in range(8)]
        zs.append(mann_kendall_z(values))
        fit = theil_sen(_blocks(values), coverage=0.8)
        assert fit.low <= fit.slope <= fit.high
    # About 20 % of flat series pass |z| ≥ 1.28 and 5 % pass 1.96 (a two-sided test on pure noise).
    assert 0.1 < sum(abs(z) >= 1.2816 for z in zs) / len(zs) < 0.3
    assert sum(abs(z) >= 1.96 for z in zs) / len(zs) < 0.1


def test_the_interval_widens_with_noise():
    rng = random.Random(5)
    quiet = theil_sen(_blocks([90 - 0.9 * i + rng.gauss(0, 0.2) for i in range(8)]), coverage=0.8)
    noisy = theil_sen(_blocks([90 - 0.9 * i + rng.gauss(0, 3.0) for i in range(8)]), coverage=0.8)
    assert noisy.high - noisy.low > quiet.high - quiet.low


def test_too_few_blocks_give_no_fit():
    assert theil_sen(_blocks([1.0, 2.0]), coverage=0.8) is None
    assert mann_kendall_z([1.0, 2.0]) == 0.0


def test_pool_cuts_blocks_from_the_newest_hour_and_drops_thin_ones():
    hours = [(float(i), 9.0 * (i + 1), 10.0 * (i + 1)) for i in range(7)]  # 90 % each, growing samples
    blocks = pool(hours, block_hours=3, min_sample=20.0)
    # Newest block = hours 4-6, then 1-3; hour 0 alone (10 attempts) is too thin.
    assert [b.centre for b in blocks] == [2.0, 5.0]
    assert all(b.value == pytest.approx(0.9) for b in blocks)
    assert blocks[-1].sample == 50.0 + 60.0 + 70.0


def test_pool_weights_hours_by_their_sample():
    blocks = pool([(0.0, 0.0, 1.0), (1.0, 99.0, 99.0), (2.0, 0.0, 0.0)], block_hours=3, min_sample=1.0)
    assert blocks[0].value == pytest.approx(0.99)  # the quiet hour's 0 % barely counts


def test_damped_steps_sum_the_damping_powers():
    steps = damped_steps(damping=0.5, horizon=3)
    assert steps == pytest.approx([0.0, 0.5, 0.75, 0.875])
    assert damped_steps(damping=1.0, horizon=4) == pytest.approx([0.0, 1.0, 2.0, 3.0, 4.0])


def test_normal_quantile():
    assert normal_quantile(0.9) == pytest.approx(1.2816, abs=1e-4)
