"""Expected rates and their beta-binomial noise: RateBaseline, calibrate_rho and rate_score."""

import math
import random
from datetime import UTC, datetime, timedelta
from statistics import NormalDist

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitoring.anomaly.rates import (
    CHI2_1_Q90,
    DEFAULT_RHO,
    MAX_RHO,
    MIN_RHO,
    RHO_MIN_HOURS,
    RateBaseline,
    calibrate_rho,
    rate_score,
)
from monitoring.anomaly.seasonal import LocalClock

PROPERTIES = settings(max_examples=100, deadline=None, database=None)
START = datetime(2025, 3, 3, tzinfo=UTC)  # a Monday
HOUR = timedelta(hours=1)


def baseline() -> RateBaseline:
    return RateBaseline(history_hours=28 * 24)


def feed(rates: RateBaseline, *, hours: int, attempts: int, rate, tz="UTC", start=START, clean=True, predicted=None):
    """``hours`` hours of ``attempts`` records each; ``rate(local_hour)`` the share that succeeded."""
    clock = LocalClock(tz)
    for i in range(hours):
        slot = clock.slot(start + i * HOUR)
        rates.add(slot, round(attempts * rate(slot.local_hour)), attempts, clean=clean, predicted=predicted)
    return rates


def slot_at(local_hour: int, tz="UTC"):
    """The slot of the first UTC hour that falls in ``local_hour``."""
    day = [LocalClock(tz).slot(START + i * HOUR) for i in range(24)]
    return next(slot for slot in day if slot.local_hour == local_hour)


def binomial_variance(attempts, p):
    return attempts * p * (1 - p)


# -- RateBaseline -------------------------------------------------------------------------------


def test_a_fresh_baseline_expects_ninety_percent_with_the_cautious_overdispersion():
    rates = baseline()
    assert rates.expected(slot_at(3)) == pytest.approx(0.9)
    assert rates.rho == DEFAULT_RHO
    assert rates.sample_hours == 0


def test_the_variance_is_binomial_for_one_record_and_grows_with_rho_beyond():
    rates = baseline()
    assert rates.variance(attempts=1, p=0.9) == pytest.approx(0.09)
    assert rates.variance(attempts=1000, p=0.9) == pytest.approx(1000 * 0.09 * (1 + 999 * DEFAULT_RHO))
    rates.rho = 0.0
    assert rates.variance(attempts=1000, p=0.9) == pytest.approx(90.0)


def test_the_pooled_rate_weighs_each_hour_by_its_attempts():
    rates = baseline()
    clock = LocalClock("UTC")
    rates.add(clock.slot(START), 0, 10, clean=True)  # a quiet hour that failed entirely
    rates.add(clock.slot(START + HOUR), 900, 1000, clean=True)
    assert rates.pooled == pytest.approx(900 / 1010)  # not the mean of the two rates (0.45)


def test_hours_that_were_not_clean_do_not_move_the_pooled_rate():
    rates = feed(baseline(), hours=48, attempts=100, rate=lambda _: 0.9)
    feed(rates, hours=5, attempts=1000, rate=lambda _: 0.5, start=START + 48 * HOUR, clean=False)
    assert rates.pooled == pytest.approx(0.9)
    assert rates.sample_hours == 53  # they are kept, for the offsets and a later accept()


def test_the_pooled_rate_reads_only_the_last_72_clean_hours():
    # Ten records an hour teach no hour-of-day offset, so the pooled rate is the plain ratio.
    rates = feed(baseline(), hours=100, attempts=10, rate=lambda _: 0.5)
    feed(rates, hours=72, attempts=10, rate=lambda _: 0.9, start=START + 100 * HOUR)
    assert rates.offsets == [0.0] * 24
    assert rates.pooled == pytest.approx(0.9)
    one_more_old = feed(baseline(), hours=100, attempts=10, rate=lambda _: 0.5)
    feed(one_more_old, hours=71, attempts=10, rate=lambda _: 0.9, start=START + 100 * HOUR)
    assert one_more_old.pooled == pytest.approx((71 * 9 + 5) / 720)


def test_a_perfect_source_is_expected_just_below_one_hundred_percent():
    rates = feed(baseline(), hours=30, attempts=50, rate=lambda _: 1.0)
    assert rates.expected(slot_at(12)) == pytest.approx(0.999)
    assert rate_score(successes=50, attempts=50, p=0.999, variance=rates.variance(attempts=50, p=0.999)) > 0


def test_a_local_hour_that_geocodes_worse_every_day_gets_its_own_offset():
    # Kabul is UTC+4:30: the hour 07:00-08:00 local is 02:30-03:30 UTC, so no UTC hour lines up with it.
    rates = feed(baseline(), hours=14 * 24, attempts=2000, rate=lambda h: 0.8 if h == 7 else 0.9, tz="Asia/Kabul")
    rates.refresh()
    assert rates.offsets[7] == pytest.approx(-0.1, abs=0.01)
    assert [o for h, o in enumerate(rates.offsets) if h != 7] == pytest.approx([0.0] * 23, abs=0.005)
    assert rates.expected(slot_at(7, "Asia/Kabul")) == pytest.approx(0.8, abs=0.01)
    assert rates.expected(slot_at(8, "Asia/Kabul")) == pytest.approx(0.9, abs=0.01)


def test_a_quiet_sources_hour_offset_is_shrunk_away_and_a_busy_sources_is_kept():
    # The same 5-point dip at 03:00 on three days: noise for 20 records an hour, signal for 2,000.
    def dip(hour):
        return 0.85 if hour == 3 else 0.9

    quiet = feed(baseline(), hours=3 * 24, attempts=20, rate=dip)
    busy = feed(baseline(), hours=3 * 24, attempts=2000, rate=dip)
    quiet.refresh()
    busy.refresh()
    assert quiet.offsets[3] == 0.0
    assert -0.05 < busy.offsets[3] < -0.03  # shrunk a little, not away


def test_an_offset_needs_three_days_of_hours_with_twenty_records():
    def dip(hour):
        return 0.7 if hour == 3 else 0.9

    two_days = feed(baseline(), hours=2 * 24, attempts=2000, rate=dip)
    small_hours = feed(baseline(), hours=7 * 24, attempts=19, rate=dip)
    two_days.refresh()
    small_hours.refresh()
    assert two_days.offsets == [0.0] * 24
    assert small_hours.offsets == [0.0] * 24


def test_it_refreshes_every_six_hours_in_its_first_week_and_then_once_a_day():
    rates = baseline()
    refreshed_at = []
    refresh = rates.refresh

    def counting():
        refreshed_at.append(len(rates.hours))
        refresh()

    rates.refresh = counting
    feed(rates, hours=12 * 24, attempts=100, rate=lambda _: 0.9)
    young = [n for n in refreshed_at if n < 7 * 24]
    mature = [n for n in refreshed_at if n >= 7 * 24]
    assert young[0] == 1  # the first hour already teaches
    assert {b - a for a, b in zip(young, young[1:], strict=False)} == {6}
    assert {b - a for a, b in zip(mature, mature[1:], strict=False)} == {24}
    assert len(mature) == 5


def test_rho_stays_cautious_until_a_day_of_predictions_has_calibrated_it():
    rng = random.Random(4)
    clock = LocalClock("UTC")
    rates = baseline()
    for i in range(RHO_MIN_HOURS):
        # Plain binomial hours of 500 records: no wobble beyond sampling noise.
        successes = sum(rng.random() < 0.9 for _ in range(500))
        rates.add(clock.slot(START + i * HOUR), successes, 500, clean=True, predicted=0.9)
        if i == RHO_MIN_HOURS - 2:
            rates.refresh()
            assert rates.rho == DEFAULT_RHO  # one prediction short
    rates.refresh()
    assert rates.rho < 0.001


def test_rho_learns_the_wobble_of_a_large_source():
    rng = random.Random(5)
    clock = LocalClock("UTC")
    rates = baseline()
    for i in range(7 * 24):
        q = rng.betavariate(0.9 * 49, 0.1 * 49)  # beta-binomial with rho = 1 / 50
        successes = sum(rng.random() < q for _ in range(400))
        rates.add(clock.slot(START + i * HOUR), successes, 400, clean=True, predicted=0.9)
    rates.refresh()
    assert 0.01 <= rates.rho <= 0.035


def test_accepting_a_lasting_change_trains_on_its_hours():
    rates = feed(baseline(), hours=72, attempts=100, rate=lambda _: 0.9)
    feed(rates, hours=36, attempts=100, rate=lambda _: 0.7, start=START + 72 * HOUR, clean=False)
    assert [rates.expected(slot_at(h)) for h in range(24)] == pytest.approx([0.9] * 24)
    rates.accept(36)
    assert all(entry.clean for entry in list(rates.hours)[-36:])
    # The last 72 clean hours now hold 36 at 90 % and 36 at 70 %.
    assert [rates.expected(slot_at(h)) for h in range(24)] == pytest.approx([0.8] * 24, abs=0.005)


# -- calibrate_rho --------------------------------------------------------------------------------


def test_errors_no_wider_than_a_chi_square_need_no_overdispersion():
    squares = [CHI2_1_Q90 * i / 100 for i in range(100)]  # the 90th percentile is 0.9 of the chi-square's
    assert calibrate_rho(squares, [999] * 100) == MIN_RHO


def test_errors_beyond_any_plausible_wobble_are_capped():
    assert calibrate_rho([1e6] * 50, [999] * 50) == MAX_RHO


def test_rho_brings_the_errors_ninetieth_percentile_to_the_chi_squares():
    sizes = [1999] * 100
    squares = [CHI2_1_Q90 * (1 + 1999 * 0.004) * (i + 1) / 91 for i in range(100)]
    rho = calibrate_rho(squares, sizes)
    scaled = sorted(sq / (1 + size * rho) for sq, size in zip(squares, sizes, strict=True))
    assert scaled[90] == pytest.approx(CHI2_1_Q90, rel=1e-4)
    assert rho == pytest.approx(0.004, rel=1e-3)


error_hours = st.lists(
    st.tuples(st.floats(min_value=0, max_value=1e4, allow_nan=False), st.integers(min_value=1, max_value=5000)),
    min_size=1,
    max_size=60,
)


@PROPERTIES
@given(error_hours)
def test_rho_is_always_within_its_bounds(hours):
    squares, sizes = [sq for sq, _ in hours], [size for _, size in hours]
    assert MIN_RHO <= calibrate_rho(squares, sizes) <= MAX_RHO


@PROPERTIES
@given(error_hours, st.floats(min_value=1.0, max_value=100.0))
def test_larger_errors_never_calibrate_a_smaller_rho(hours, factor):
    squares, sizes = [sq for sq, _ in hours], [size for _, size in hours]
    assert calibrate_rho([sq * factor for sq in squares], sizes) >= calibrate_rho(squares, sizes)


# -- rate_score -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("successes", "attempts", "variance"),
    [(0, 0, 1.0), (5, 0, 1.0), (5, -3, 1.0), (50, 100, 0.0), (50, 100, -1.0)],
)
def test_no_attempts_or_no_variance_scores_zero(successes, attempts, variance):
    assert rate_score(successes=successes, attempts=attempts, p=0.9, variance=variance) == 0.0


def test_exactly_the_expected_successes_score_zero():
    assert rate_score(successes=90, attempts=100, p=0.9, variance=9.0) == pytest.approx(0.0, abs=1e-6)


def test_all_or_no_successes_give_finite_scores_of_the_right_sign():
    high = rate_score(successes=100, attempts=100, p=0.9, variance=9.0)
    low = rate_score(successes=0, attempts=100, p=0.9, variance=9.0)
    assert 0 < high < math.inf and -math.inf < low < 0


def test_successes_outside_zero_to_attempts_are_clamped():
    def score(x):
        return rate_score(successes=x, attempts=100, p=0.9, variance=9.0)

    assert score(130) == score(100)
    assert score(-5) == score(0)


def test_three_failures_among_fifteen_at_97_percent_are_judged_by_the_binomial_tail_not_a_normal_z():
    n, p, x = 15, 0.97, 12
    variance = binomial_variance(n, p)
    tail = sum(math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(x + 1))  # P(X ≤ 12) ≈ 0.009
    score = rate_score(successes=x, attempts=n, p=p, variance=variance)
    normal_z = (x - n * p) / math.sqrt(variance)
    assert -3.0 < score < -2.2  # a 1-in-100 event, not a 4-sigma one
    assert tail / 3 < NormalDist().cdf(score) < tail * 3
    assert NormalDist().cdf(normal_z) < tail / 100  # what the deviance residual avoids


def test_the_beta_binomial_inflation_divides_the_score():
    binomial = rate_score(successes=850, attempts=1000, p=0.9, variance=binomial_variance(1000, 0.9))
    inflated = rate_score(successes=850, attempts=1000, p=0.9, variance=4 * binomial_variance(1000, 0.9))
    assert inflated == pytest.approx(binomial / 2)


def test_a_rate_from_38_records_is_judged_by_its_binomial_noise_one_from_3800_by_the_wobble():
    rates = baseline()  # rho 0.01
    p = 0.95

    def scores(n):
        x = round(n * (p - 0.05))  # five points below expected
        return (
            rate_score(successes=x, attempts=n, p=p, variance=binomial_variance(n, p)),
            rate_score(successes=x, attempts=n, p=p, variance=rates.variance(attempts=n, p=p)),
        )

    small_binomial, small = scores(38)
    large_binomial, large = scores(3800)
    assert small == pytest.approx(small_binomial, rel=0.2)  # rho barely matters at 38 records
    assert large < -2 and large_binomial < -10  # the binomial alone would call 3,800 records a certainty
    assert large == pytest.approx(large_binomial / math.sqrt(1 + 3799 * 0.01))


@PROPERTIES
@given(
    attempts=st.integers(min_value=1, max_value=10_000),
    p=st.floats(min_value=0.001, max_value=0.999),
    share=st.floats(min_value=0.0, max_value=1.0),
    inflation=st.floats(min_value=1.0, max_value=50.0),
)
def test_the_score_is_negative_exactly_when_successes_fall_short(attempts, p, share, inflation):
    successes = round(share * attempts)
    score = rate_score(successes=successes, attempts=attempts, p=p, variance=inflation * binomial_variance(attempts, p))
    assert math.isfinite(score)
    if successes < attempts * p - 1e-9:
        assert score < 0
    elif successes > attempts * p + 1e-9:
        assert score > 0


@PROPERTIES
@given(attempts=st.integers(min_value=1, max_value=2000), p=st.floats(min_value=0.01, max_value=0.99))
def test_more_successes_never_score_lower(attempts, p):
    variance = binomial_variance(attempts, p)
    scores = [rate_score(successes=x, attempts=attempts, p=p, variance=variance) for x in range(0, attempts + 1)]
    assert all(b >= a - 1e-9 for a, b in zip(scores, scores[1:], strict=False))
