"""Expected volume in the source's own time zone: LocalClock, VolumeBaseline, volume_score, ArrivalCurve."""

import math
import random
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitoring.anomaly.seasonal import (
    ARRIVAL_MIN_HOURS,
    ARRIVAL_MIN_ITEMS,
    MAX_DISPERSION,
    MIN_DISPERSION,
    ArrivalCurve,
    LocalClock,
    Slot,
    VolumeBaseline,
    volume_score,
)

PROPERTIES = settings(max_examples=100, deadline=None, database=None)
START = datetime(2025, 3, 3, tzinfo=UTC)  # a Monday
HOUR = timedelta(hours=1)
MON, TUE, WED, THU, FRI, SAT, SUN = range(7)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def slots(hours: int, *, tz="UTC", start=START) -> list[Slot]:
    clock = LocalClock(tz)
    return [clock.slot(start + i * HOUR) for i in range(hours)]


def daily(hour: int) -> float:
    """A daily rhythm peaking at 14:00 local time, 50 to 150 records an hour."""
    return 100 * (1 + 0.5 * math.cos(2 * math.pi * (hour - 14) / 24))


def baseline_from(values, *, clean=True, predicted=None) -> VolumeBaseline:
    """A baseline fed ``values``: (slot, records) pairs, in order."""
    volume = VolumeBaseline(history_hours=28 * 24)
    for slot, value in values:
        volume.add(slot, value, clean=clean(slot) if callable(clean) else clean, predicted=predicted)
    return volume


def weeks(days: int, factor, *, tz="UTC", start=START):
    """``days`` of the daily rhythm, each local day scaled by ``factor(day index, weekday)``."""
    first = slots(1, tz=tz, start=start)[0].day
    return [
        (slot, round(daily(slot.local_hour) * factor((slot.day - first).days, slot.weekday)))
        for slot in slots(days * 24, tz=tz, start=start)
    ]


# -- LocalClock -------------------------------------------------------------------------------------


def test_kyiv_skips_three_oclock_on_the_night_the_clocks_go_forward():
    local = slots(6, tz="Europe/Kyiv", start=utc(2025, 3, 29, 21))
    assert [s.local_hour for s in local] == [23, 0, 1, 2, 4, 5]
    assert [s.day for s in local] == [date(2025, 3, 29)] + [date(2025, 3, 30)] * 5
    assert [s.weekday for s in local] == [SAT] + [SUN] * 5


def test_kyiv_has_three_oclock_twice_on_the_night_the_clocks_go_back():
    local = slots(5, tz="Europe/Kyiv", start=utc(2025, 10, 25, 23))
    assert [s.local_hour for s in local] == [2, 3, 3, 4, 5]
    assert {s.day for s in local} == {date(2025, 10, 26)}


def test_kabul_half_hour_offset_puts_each_utc_hour_in_the_local_hour_it_starts_in():
    # 19:00 UTC is 23:30 in Kabul; 20:00 UTC is 00:30 on the next local day, a Friday.
    late, midnight = slots(2, tz="Asia/Kabul", start=utc(2025, 3, 6, 19))
    assert (late.local_hour, late.weekday, late.day) == (23, THU, date(2025, 3, 6))
    assert (midnight.local_hour, midnight.weekday, midnight.day) == (0, FRI, date(2025, 3, 7))
    assert sorted(s.local_hour for s in slots(24, tz="Asia/Kabul")) == list(range(24))


def test_the_local_weekday_can_differ_from_the_utc_one():
    thursday_night = LocalClock("Asia/Damascus").slot(utc(2025, 3, 6, 22))  # UTC+3: already Friday
    assert (thursday_night.weekday, thursday_night.local_hour) == (FRI, 1)


# -- VolumeBaseline: profile and weekday factors ----------------------------------------------------


def test_the_profile_is_learnt_by_local_hour():
    volume = baseline_from((slot, 10 * (slot.local_hour + 1)) for slot in slots(14 * 24, tz="Asia/Kabul"))
    assert volume.profile == pytest.approx([10 * (h + 1) for h in range(24)])
    assert volume.weekday == pytest.approx([1.0] * 7)


def test_the_profile_still_fits_the_local_day_right_after_a_clock_change():
    # Two weeks before Kyiv's clocks go forward on 30 March; the day after follows local time.
    values = weeks(14, lambda day, weekday: 1.0, tz="Europe/Kyiv", start=utc(2025, 3, 15, 22))
    volume = baseline_from(values)
    after_change = slots(24, tz="Europe/Kyiv", start=utc(2025, 3, 30, 21))  # Monday 31 March, local
    assert {s.day for s in after_change} == {date(2025, 3, 31)}
    assert [volume.expected(s) for s in after_change] == pytest.approx([daily(h) for h in range(24)], rel=0.01)


def test_a_weekend_seen_once_is_learnt_because_its_two_days_look_alike():
    volume = baseline_from(weeks(7, lambda day, weekday: 0.5 if weekday in (SAT, SUN) else 1.0))
    assert volume.weekday == pytest.approx([1, 1, 1, 1, 1, 0.5, 0.5], abs=0.01)


def test_a_weekend_seen_once_with_two_different_quiet_days_is_learnt_too():
    factors = {SAT: 0.5, SUN: 0.7}  # both clearly quiet, within ×1.6 of each other
    volume = baseline_from(weeks(7, lambda day, weekday: factors.get(weekday, 1.0)))
    assert volume.weekday == pytest.approx([1, 1, 1, 1, 1, 0.5, 0.7], abs=0.01)


def test_a_holiday_seen_once_does_not_teach_that_its_weekday_is_quiet():
    volume = baseline_from(weeks(7, lambda day, weekday: 0.5 if weekday == WED else 1.0))
    assert volume.weekday[WED] == pytest.approx(1.0)


def test_of_two_occurrences_the_one_nearer_the_usual_day_is_taken():
    def factor(day, weekday):
        if weekday == WED:
            return 0.5 if day < 7 else 1.0  # a holiday in the first week
        if weekday == SAT:
            return 0.5 if day < 7 else 0.6
        return 1.0

    volume = baseline_from(weeks(14, factor))
    assert volume.weekday[WED] == pytest.approx(1.0, abs=0.01)
    assert volume.weekday[SAT] == pytest.approx(0.6, abs=0.01)


def test_with_more_occurrences_the_weekday_factor_is_their_median():
    saturdays = [0.4, 0.9, 0.5, 0.6]
    volume = baseline_from(weeks(28, lambda day, weekday: saturdays[day // 7] if weekday == SAT else 1.0))
    assert volume.weekday[SAT] == pytest.approx(0.55, abs=0.01)


def test_a_day_that_was_mostly_abnormal_says_nothing_about_its_weekday():
    def outage(day, weekday):
        return 0.0 if weekday == WED and day in (9, 16) else 1.0

    values = weeks(28, outage)
    outage_days = {slot.day for slot, value in values if value == 0}
    flagged = baseline_from(values, clean=lambda slot: slot.day not in outage_days)
    unflagged = baseline_from(values)
    assert flagged.weekday[WED] == pytest.approx(1.0, abs=0.01)
    assert unflagged.weekday[WED] == pytest.approx(0.5, abs=0.01)  # the median of 1, 0, 0, 1


# -- VolumeBaseline: level, dispersion, pace ------------------------------------------------------


def flat(hours: int, value: int, *, start=START):
    return [(slot, value) for slot in slots(hours, start=start)]


def doubled_for_two_days(value: int, *, clean=True) -> VolumeBaseline:
    return baseline_from(
        flat(14 * 24, value) + flat(48, 2 * value, start=START + 14 * 24 * HOUR),
        clean=lambda slot: clean or slot.day < date(2025, 3, 17),
    )


def test_a_busy_source_that_doubled_for_two_days_has_a_level_near_two():
    volume = doubled_for_two_days(100)
    assert volume.profile == pytest.approx([100.0] * 24)  # the median over 14 days ignores two days
    assert volume.level == pytest.approx(1 + 4800 / 4850)


def test_a_quiet_sources_level_is_shrunk_towards_one():
    volume = doubled_for_two_days(1)  # 48 expected records over 48 hours say little
    assert volume.level == pytest.approx(1 + 48 / 98)


def test_hours_that_were_not_clean_do_not_move_the_level():
    assert doubled_for_two_days(100, clean=False).level == pytest.approx(1.0)


def test_the_level_is_capped_at_five_times_the_profile():
    volume = baseline_from(flat(14 * 24, 100) + flat(48, 2000, start=START + 14 * 24 * HOUR))
    assert volume.level == 5.0


def test_the_dispersion_keeps_its_default_until_two_days_of_predictions():
    volume = baseline_from(flat(47, 100), predicted=100.0)
    assert volume.dispersion == 0.05


def test_perfect_predictions_leave_the_minimum_dispersion_and_wild_ones_the_maximum():
    assert baseline_from(flat(72, 100), predicted=100.0).dispersion == MIN_DISPERSION
    wild = [(slot, 0 if i % 2 else 400) for i, (slot, _) in enumerate(flat(72, 100))]
    assert baseline_from(wild, predicted=100.0).dispersion == MAX_DISPERSION


def test_the_dispersion_reads_the_relative_prediction_errors_beyond_poisson():
    rng = random.Random(2)
    noisy = [(slot, round(rng.gauss(1000, 200))) for slot, _ in flat(14 * 24, 1000)]  # 20 % relative noise
    volume = baseline_from(noisy, predicted=1000.0)
    assert volume.dispersion == pytest.approx(0.2**2 - 1 / 1000, rel=0.2)
    assert volume.variance(1000) == pytest.approx(1000 + volume.dispersion * 1000**2)


def test_quiet_predictions_do_not_calibrate_the_dispersion():
    assert baseline_from(flat(72, 3), predicted=3.0).dispersion == 0.05  # under 5 records: counting noise


def test_todays_pace_is_the_median_of_the_last_six_clean_hours_against_expected():
    busy_morning = flat(14 * 24, 100) + flat(6, 150, start=START + 14 * 24 * HOUR)
    volume = baseline_from(busy_morning)
    assert volume.recent_pace() == pytest.approx(150 / (100 * volume.level))
    assert volume.recent_pace() > 1.3
    # Hours kept out of the baseline are skipped: the pace is still the morning's.
    volume.add(slots(1, start=START + (14 * 24 + 6) * HOUR)[0], 0, clean=False)
    assert volume.recent_pace() == pytest.approx(150 / (100 * volume.level))


def test_the_pace_is_one_until_six_clean_hours_are_known():
    # Two weeks kept out of the baseline (they still shape the profile), then busy clean hours.
    history = flat(14 * 24, 100)
    busy = flat(6, 200, start=START + 14 * 24 * HOUR)
    five = baseline_from(history + busy[:5], clean=lambda slot: slot.day > date(2025, 3, 16))
    six = baseline_from(history + busy, clean=lambda slot: slot.day > date(2025, 3, 16))
    assert five.recent_pace() == 1.0
    assert six.recent_pace() == pytest.approx(200 / (100 * six.level))
    assert six.recent_pace() != 1.0


# -- volume_score --------------------------------------------------------------------------------


def negative_binomial_variance(mean, dispersion):
    return mean + dispersion * mean * mean


def test_nothing_expected_scores_zero():
    assert volume_score(50, 0, 1.0) == 0.0
    assert volume_score(50, -3, 1.0) == 0.0


def test_exactly_the_expected_volume_scores_zero():
    assert volume_score(110, 110, negative_binomial_variance(110, 0.04)) == pytest.approx(0.0, abs=1e-6)


def test_a_drop_to_a_third_of_110_records_is_about_four_spreads_where_a_raw_z_says_three():
    variance = negative_binomial_variance(110, 0.0403)
    raw_z = (110 / 3 - 110) / math.sqrt(variance)
    assert raw_z == pytest.approx(-3.0, abs=0.01)
    assert volume_score(110 / 3, 110, variance) == pytest.approx(-4.0, abs=0.05)


def test_on_large_counts_with_poisson_noise_the_score_is_the_normal_z_on_both_sides():
    assert volume_score(10_300, 10_000, 10_000) == pytest.approx(3.0, rel=0.02)
    assert volume_score(9_700, 10_000, 10_000) == pytest.approx(-3.0, rel=0.02)


def test_an_empty_hour_has_a_finite_negative_score_and_a_negative_count_is_an_empty_hour():
    variance = negative_binomial_variance(200, 0.05)
    assert -math.inf < volume_score(0, 200, variance) < -4
    assert volume_score(-5, 200, variance) == volume_score(0, 200, variance)


def test_a_variance_below_the_mean_is_judged_as_poisson():
    y, mu = 130, 100
    poisson = math.sqrt(2 * (y * math.log(y / mu) - (y - mu)))
    assert volume_score(y, mu, 50) == pytest.approx(poisson, rel=1e-3)


means = st.floats(min_value=1, max_value=50_000)
dispersions = st.floats(min_value=0.0, max_value=1.0)
counts = st.integers(min_value=0, max_value=100_000)  # volume is a count of records


@PROPERTIES
@given(observed=st.integers(min_value=0, max_value=200_000), expected=means, dispersion=dispersions)
def test_the_score_is_negative_below_expected_and_positive_above(observed, expected, dispersion):
    score = volume_score(observed, expected, negative_binomial_variance(expected, dispersion))
    assert math.isfinite(score)
    if observed < expected * (1 - 1e-9):
        assert score < 0
    elif observed > expected * (1 + 1e-9):
        assert score > 0


@PROPERTIES
@given(a=counts, b=counts, expected=means)
def test_more_records_never_score_lower(a, b, expected):
    variance = negative_binomial_variance(expected, 0.05)
    low, high = sorted((a, b))
    assert volume_score(low, expected, variance) <= volume_score(high, expected, variance) + 1e-9


@PROPERTIES
@given(observed=counts, a=means, b=means, dispersion=dispersions)
def test_the_same_count_scores_lower_against_a_larger_expectation(observed, a, b, dispersion):
    smaller, larger = sorted((a, b))
    assert volume_score(observed, larger, negative_binomial_variance(larger, dispersion)) <= (
        volume_score(observed, smaller, negative_binomial_variance(smaller, dispersion)) + 1e-9
    )


@PROPERTIES
@given(expected=st.floats(min_value=5, max_value=50_000), share=st.floats(0.01, 0.99), dispersion=dispersions)
def test_a_drop_scores_further_than_a_spike_of_the_same_size(expected, share, dispersion):
    # A count cannot fall below zero: the same distance down is rarer than up.
    variance = negative_binomial_variance(expected, dispersion)
    distance = share * expected
    drop = volume_score(expected - distance, expected, variance)
    spike = volume_score(expected + distance, expected, variance)
    assert -drop >= spike - 1e-9


# -- ArrivalCurve ---------------------------------------------------------------------------------


def learnt(shares_by_quarter, *, hours=ARRIVAL_MIN_HOURS, total=100, curve=None) -> ArrivalCurve:
    """A curve that saw ``hours`` closed hours of ``total`` records, ``shares_by_quarter`` of them by each quarter."""
    curve = curve or ArrivalCurve(history_hours=14 * 24)
    for i in range(hours):
        hour = START + i * HOUR
        for fraction, share in zip((0.25, 0.5, 0.75), shares_by_quarter, strict=True):
            curve.note(hour, fraction, round(share * total))
        curve.close(hour, total)
    return curve


def test_a_new_curve_admits_it_does_not_know():
    curve = ArrivalCurve(history_hours=100)
    assert not curve.known(0.5)
    assert curve.bounds(0.5) == (0.0, 0.5, 1.0)


def test_the_whole_hour_is_always_known():
    curve = ArrivalCurve(history_hours=100)
    assert curve.known(1.0)
    assert curve.bounds(1.0) == (1.0, 1.0, 1.0)


def test_a_fraction_is_known_only_after_arrival_min_hours_closed_hours_were_seen_at_it():
    almost = learnt((0.25, 0.5, 0.75), hours=ARRIVAL_MIN_HOURS - 1)
    assert not almost.known(0.5)
    assert almost.bounds(0.5) == (0.0, 0.5, 1.0)
    assert learnt((0.25, 0.5, 0.75)).known(0.5)
    assert not learnt((0.25, 0.5, 0.75)).known(0.1)  # never judged at :06


def test_a_batch_source_posting_at_ten_past_has_everything_by_a_quarter_past():
    curve = learnt((1.0, 1.0, 1.0))
    assert curve.bounds(0.25) == (1.0, 1.0, 1.0)
    assert curve.bounds(0.26) == (1.0, 1.0, 1.0)  # the same twentieth of the hour


def test_a_source_posting_at_fifty_past_has_nothing_by_three_quarters_past():
    assert learnt((0.0, 0.0, 0.0)).bounds(0.75) == (0.0, 0.0, 0.0)


def test_a_streaming_source_has_its_records_spread_around_the_elapsed_share():
    rng = random.Random(1)
    curve = ArrivalCurve(history_hours=14 * 24)
    for i in range(100):
        hour = START + i * HOUR
        moments = sorted(rng.random() for _ in range(200))
        for fraction in (0.25, 0.5, 0.75):
            curve.note(hour, fraction, sum(m < fraction for m in moments))
        curve.close(hour, 200)
    for fraction in (0.25, 0.5, 0.75):
        low, typical, high = curve.bounds(fraction)
        assert low < typical < high
        assert typical == pytest.approx(fraction, abs=0.03)
        assert high - low < 0.15


def test_hours_with_few_records_teach_nothing_about_timing():
    curve = learnt((1.0, 1.0, 1.0), total=ARRIVAL_MIN_ITEMS - 1)
    assert not curve.known(0.25)


def test_notes_for_another_hour_are_not_learnt():
    curve = ArrivalCurve(history_hours=100)
    for i in range(ARRIVAL_MIN_HOURS):
        hour = START + i * HOUR
        curve.note(hour, 0.5, 100)
        curve.close(hour + HOUR, 100)
    assert not curve.known(0.5)


def test_a_note_for_a_new_hour_discards_the_unclosed_one():
    curve = ArrivalCurve(history_hours=100)
    for i in range(ARRIVAL_MIN_HOURS):
        hour = START + 2 * i * HOUR
        curve.note(hour, 0.25, 100)  # never closed
        curve.note(hour + HOUR, 0.5, 50)
        curve.close(hour + HOUR, 100)
    assert not curve.known(0.25)
    assert curve.bounds(0.5) == (0.5, 0.5, 0.5)


def test_more_than_the_hours_total_by_a_fraction_counts_as_all_of_it():
    assert learnt((1.5, 1.5, 1.5)).bounds(0.5) == (1.0, 1.0, 1.0)


def test_the_curve_forgets_hours_beyond_its_history():
    curve = learnt((0.25, 0.5, 0.75), hours=30, curve=ArrivalCurve(history_hours=30))
    assert curve.bounds(0.5) == (0.5, 0.5, 0.5)
    learnt((1.0, 1.0, 1.0), hours=30, curve=curve)
    assert curve.bounds(0.5) == (1.0, 1.0, 1.0)


@PROPERTIES
@given(st.lists(st.floats(min_value=0, max_value=1), min_size=ARRIVAL_MIN_HOURS, max_size=80))
def test_the_bounds_are_ordered_low_typical_high_within_the_hour(shares):
    curve = ArrivalCurve(history_hours=14 * 24)
    for i, share in enumerate(shares):
        hour = START + i * HOUR
        curve.note(hour, 0.5, round(share * 1000))
        curve.close(hour, 1000)
    low, typical, high = curve.bounds(0.5)
    assert 0.0 <= low <= typical <= high <= 1.0


@pytest.mark.parametrize(
    ("views", "total", "silent_since"),
    [
        ({0.25: 40, 0.5: 40, 0.75: 40}, 40, 0.25),  # everything by a quarter past, then silence
        ({0.25: 10, 0.5: 30, 0.75: 40}, 40, 0.75),
        ({0.25: 10, 0.5: 20, 0.75: 30}, 40, 1.0),  # records until the end
        ({}, 40, 1.0),  # no partial view: nothing is known about the tail
        ({0.25: 0, 0.5: 0, 0.75: 0}, 0, 0.0),  # an empty hour is silent throughout
    ],
)
def test_close_says_from_when_the_hour_was_silent(views, total, silent_since):
    curve = ArrivalCurve(history_hours=100)
    for fraction, arrived in views.items():
        curve.note(START, fraction, arrived)
    assert curve.close(START, total) == silent_since


def test_close_of_an_hour_without_views_knows_nothing_of_its_tail_even_after_views_of_another():
    curve = ArrivalCurve(history_hours=100)
    curve.note(START, 0.25, 40)
    assert curve.close(START + HOUR, 40) == 1.0
