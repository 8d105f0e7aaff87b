"""The CUSUM run behind the slow-degradation rule: how it grows, drains, resets and pools its counts."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitoring.anomaly.cusum import MAX_STEP, Run

PROPERTIES = settings(max_examples=100, deadline=None, database=None)


def hour(run: Run, score: float, *, attempts: int = 100, successes: int = 90, p: float = 0.9, weight=1.0) -> Run:
    """One more observation with slack 1, as the streaming detector feeds it."""
    return run.step(score=score, slack=1.0, weight=weight, successes=successes, attempts=attempts, p=p)


def after(scores, run: Run | None = None) -> Run:
    run = run or Run()
    for score in scores:
        run = hour(run, score)
    return run


def test_a_new_run_is_empty():
    run = Run()
    assert (run.statistic, run.hours, run.successes, run.attempts, run.expected_successes) == (0.0, 0.0, 0, 0, 0.0)
    assert run.drop_points == 0.0


def test_a_steady_two_spread_shortfall_adds_one_per_hour_and_crosses_eight_in_eight_hours():
    statistics = []
    run = Run()
    for _ in range(8):
        run = hour(run, -2.0)
        statistics.append(run.statistic)
    assert statistics == pytest.approx([1, 2, 3, 4, 5, 6, 7, 8])
    assert run.hours == 8


def test_an_hour_within_the_slack_leaves_nothing_to_accumulate():
    assert after([-1.0]) == Run()
    assert after([-0.5, 0.3, -0.99]) == Run()


def test_healthy_hours_drain_the_statistic_and_a_drained_run_starts_afresh():
    run = after([-4.0, -4.0])  # 3 + 3
    assert run.statistic == pytest.approx(6.0)
    assert hour(run, 1.0).statistic == pytest.approx(4.0)  # one healthy hour takes its score plus the slack
    drained = after([2.0, 2.0], run)
    assert drained == Run()
    # The next run pools only its own hours: the earlier shortfall is forgotten.
    fresh = hour(drained, -3.0, attempts=50, successes=40)
    assert (fresh.hours, fresh.attempts, fresh.successes) == (1.0, 50, 40)


def test_one_collapsed_hour_adds_at_most_max_step():
    assert hour(Run(), -100.0).statistic == pytest.approx(MAX_STEP - 1.0)
    # So a few ordinary hours drain it instead of the collapse hanging over the rest of the day.
    assert after([0.0] * 6, hour(Run(), -100.0)) == Run()


def test_a_partial_hour_pays_its_share_of_the_slack():
    run = hour(Run(), -2.0, weight=0.25)
    assert run.statistic == pytest.approx(2.0 - 0.25)
    assert run.hours == 0.25


def test_the_run_pools_its_counts_and_says_how_far_below_expected_it_has_been():
    run = hour(Run(), -3.0, attempts=100, successes=80, p=0.9)
    run = hour(run, -3.0, attempts=300, successes=255, p=0.95)
    assert (run.attempts, run.successes) == (400, 335)
    assert run.expected_successes == pytest.approx(90 + 285)
    assert run.drop_points == pytest.approx(100 * (375 - 335) / 400)  # 10 points


def test_a_step_returns_a_new_run_and_leaves_the_old_one_unchanged():
    run = after([-3.0])
    before = (run.statistic, run.hours, run.attempts)
    hour(run, -3.0)
    assert (run.statistic, run.hours, run.attempts) == before


scores = st.floats(min_value=-50, max_value=50, allow_nan=False)


@PROPERTIES
@given(st.lists(scores, max_size=40))
def test_the_statistic_is_never_negative_and_follows_the_recursion(values):
    run, expected = Run(), 0.0
    for score in values:
        run = hour(run, score)
        expected = max(0.0, expected - max(score, -MAX_STEP) - 1.0)
        assert run.statistic >= 0.0
        assert run.statistic == pytest.approx(expected, abs=1e-6)


@PROPERTIES
@given(st.lists(scores, max_size=40))
def test_the_run_counts_only_the_hours_since_the_statistic_was_last_zero(values):
    run, since_zero = Run(), 0
    for score in values:
        run = hour(run, score)
        since_zero = since_zero + 1 if run.statistic > 0 else 0
        assert run.hours == since_zero
        assert run.attempts == 100 * since_zero
        if run.statistic == 0:
            assert run == Run()
