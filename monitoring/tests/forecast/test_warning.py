"""The "will cross within N hours" rule logic: when it fires, its hysteresis, and its policies."""

import dataclasses
from datetime import timedelta

import pytest

from monitoring.forecast import (
    ABOVE,
    BELOW,
    EARLIEST,
    LEARNING,
    READY,
    CrossingWarning,
    Forecast,
    Trend,
    WarningPolicy,
)
from monitoring.forecast.trend import damped_steps
from monitoring.tests.forecast.series import START

HOUR = timedelta(hours=1)


def forecast(level, slope=0.0, *, significant=None, interval=None, band=1.0, hour=0, horizon=24):
    """A forecast of a rate from ``level`` with a straight trend (no season, no damping)."""
    significant = slope != 0.0 if significant is None else significant
    low, high = interval or (slope, slope)
    issued = START + hour * HOUR
    projected = slope if significant else 0.0
    values = tuple(level + projected * h for h in range(1, horizon + 1))
    trend = Trend(
        slope=slope,
        low=low,
        high=high,
        z=-3.0 if significant else -0.5,
        significant=significant,
        projected=projected,
        blocks=8,
        window_from=issued - 23 * HOUR,
        window_to=issued,
        damping=1.0,
    )
    return Forecast(
        metric="geocoding_success_rate",
        unit="points",
        issued_after=issued,
        state=READY,
        current=level,
        level=level,
        level_hours=3,
        trend=trend,
        calibrated=True,
        values=values,
        lows=tuple(v - band for v in values),
        highs=tuple(v + band for v in values),
        season=(0.0,) * (horizon + 1),
        steps=tuple(damped_steps(damping=1.0, horizon=horizon)),
    )


def test_warns_when_the_projection_crosses_within_n_hours_while_still_on_the_good_side():
    rule = CrossingWarning(threshold=85.0)
    state = rule.update(forecast=forecast(90.0, -0.5))
    assert state.active and state.changed
    assert state.crossing.hours == 11  # 90 − 0.5 × 11 = 84.5
    assert "below 85 in 11 h" in state.reason
    assert state.since == START


def test_a_flat_rate_never_warns():
    rule = CrossingWarning(threshold=85.0)
    for hour in range(48):
        state = rule.update(forecast=forecast(86.0, hour=hour, band=3.0))
        assert not state.active
    assert state.reason.startswith("no trend")


def test_a_crossing_beyond_n_hours_does_not_warn():
    state = CrossingWarning(threshold=85.0).update(forecast=forecast(99.0, -0.2))
    assert not state.active and state.crossing.hours is None


def test_hysteresis_holds_the_warning_through_a_wobble_and_releases_after_quiet_hours():
    rule = CrossingWarning(threshold=85.0, policy=WarningPolicy(within_hours=24, release_hours=3))
    assert rule.update(forecast=forecast(95.0, -0.5, hour=0)).active  # crossing in 21 h
    held = rule.update(forecast=forecast(95.0, -0.3, hour=1, horizon=48))  # in 34 h: within 1.5 × 24
    assert held.active and not held.changed and held.reason.startswith("held")
    assert held.since == START
    quiet = [rule.update(forecast=forecast(95.0, hour=h)) for h in (2, 3, 4)]
    assert [s.active for s in quiet] == [True, True, False]
    assert quiet[-1].changed and quiet[-1].since is None


def test_a_slide_that_wobbles_around_the_horizon_is_one_warning_not_many():
    rule = CrossingWarning(threshold=85.0)
    changes = 0
    for hour in range(24):
        slope = -0.45 if hour % 2 else -0.35  # crossings in 23 h and 29 h, alternately
        changes += rule.update(forecast=forecast(95.5, slope, hour=hour, horizon=48)).changed
    assert changes == 1 and rule.active


def test_the_warning_ends_when_the_threshold_is_crossed_the_threshold_rule_takes_over():
    rule = CrossingWarning(threshold=85.0)
    assert rule.update(forecast=forecast(88.0, -0.5)).active
    state = rule.update(forecast=forecast(88.0, -0.5, hour=1), current=84.0)
    assert not state.active and state.changed
    assert "already below 85" in state.reason


def test_the_callers_current_value_decides_the_good_side():
    state = CrossingWarning(threshold=85.0).update(forecast=forecast(84.5, -0.5), current=86.0)
    assert state.active  # the rule's own window still reads 86 %: warn, do not wait


def test_no_forecast_no_warning():
    learning = Forecast(
        metric="geocoding_success_rate",
        unit="points",
        issued_after=START,
        state=LEARNING,
        reason="learning: 10 of 72 hours",
    )
    state = CrossingWarning(threshold=85.0).update(forecast=learning)
    assert not state.active and state.reason == "learning: 10 of 72 hours"


def test_the_earliest_policy_warns_on_the_adverse_end_of_the_trend_interval():
    f = forecast(92.0, -0.1, significant=False, interval=(-0.5, 0.3))
    assert not CrossingWarning(threshold=85.0).update(forecast=f).active
    state = CrossingWarning(threshold=85.0, policy=WarningPolicy(edge=EARLIEST)).update(forecast=f)
    assert state.active and state.crossing.earliest == 15


def test_the_band_policy_warns_on_noise_alone():
    f = forecast(86.0, band=3.0)
    assert not CrossingWarning(threshold=85.0).update(forecast=f).active
    assert CrossingWarning(threshold=85.0, policy=WarningPolicy(edge="band")).update(forecast=f).active


def test_a_rise_above_a_ceiling_warns_the_same_way():
    state = CrossingWarning(threshold=10.0, direction=ABOVE).update(forecast=forecast(5.0, 0.5))
    assert state.active and state.crossing.hours == 11 and state.crossing.direction == ABOVE


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        WarningPolicy(edge="median")
    with pytest.raises(ValueError):
        WarningPolicy(within_hours=0)
    with pytest.raises(ValueError):
        CrossingWarning(threshold=85.0, direction="sideways")
    assert BELOW == "below"


def test_require_trend_ignores_a_crossing_by_the_daily_cycle_alone():
    f = forecast(86.0)  # no trend; a season dipping 2 points at hour 5
    f = dataclasses.replace(f, values=tuple(v - (2.0 if h == 5 else 0.0) for h, v in enumerate(f.values, 1)))
    assert CrossingWarning(threshold=85.0).update(forecast=f).active
    assert not CrossingWarning(threshold=85.0, policy=WarningPolicy(require_trend=True)).update(forecast=f).active


def test_require_confident_needs_the_lenient_end_of_the_interval_to_cross_too():
    confident = WarningPolicy(require_confident=True)
    sure = forecast(90.0, -0.5, interval=(-0.7, -0.3))  # lenient end: below 85 in 17 h
    assert CrossingWarning(threshold=85.0, policy=confident).update(forecast=sure).active
    unsure = forecast(90.0, -0.5, interval=(-0.9, 0.1))  # lenient end rises: may never cross
    assert CrossingWarning(threshold=85.0).update(forecast=unsure).active
    assert not CrossingWarning(threshold=85.0, policy=confident).update(forecast=unsure).active
