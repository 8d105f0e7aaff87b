"""The streaming detector's rate rules (RateRules): windows, the single-hour rule, the CUSUM, explanations."""

import random
from dataclasses import replace

import pytest

from monitoring.anomaly.config import StreamingConfig
from monitoring.anomaly.detector import GEOCODING_SUCCESS_RATE, VALIDATION_PASS_RATE, VOLUME, HourCounts
from monitoring.anomaly.rates import rate_score
from monitoring.anomaly.streaming_rates import _finding, _low_before
from monitoring.tests.anomaly.test_streaming import HOUR, START, fed, history, hour_counts, normal_records

CONFIG = StreamingConfig()
K_RATE = CONFIG.sensitivity * CONFIG.rate_factor  # a mature detector's rate threshold


def rate_history(*, days=14, volume=400, validation=0.95, seed=1, start=START) -> list[HourCounts]:
    """Like ``history`` but with the validation rate chosen (``history`` always passes 95 %)."""
    rng = random.Random(seed)
    hours = [start + i * HOUR for i in range(days * 24)]
    return [
        hour_counts(h, records=normal_records(h, volume=volume, rng=rng), validation=validation, rng=rng) for h in hours
    ]


def with_rate(counts: HourCounts, metric: str, rate: float, *, attempts: int | None = None) -> HourCounts:
    """``counts`` with ``metric`` at ``rate`` (over ``attempts`` records so far, when given)."""
    n = counts.geocoding_attempts if attempts is None else attempts
    # The other rate keeps its share over the same records.
    geocoding = counts.geocoding_successes / max(counts.geocoding_attempts, 1)
    validation = counts.validation_passes / max(counts.validation_attempts, 1)
    if metric == GEOCODING_SUCCESS_RATE:
        geocoding = rate
    else:
        validation = rate
    return replace(
        counts,
        geocoding_attempts=n,
        geocoding_successes=round(n * geocoding),
        validation_attempts=n,
        validation_passes=round(n * validation),
    )


def only(findings, metric):
    return [f for f in findings if f.metric == metric]


def steady(hours: int, *, start=START, validation=0.95, records=1000) -> list[HourCounts]:
    """Noise-free hours: the baseline learns exact rates and the smallest overdispersion."""
    return [
        HourCounts(
            hour=start + i * HOUR,
            geocoding_attempts=records,
            geocoding_successes=round(0.9 * records),
            validation_attempts=records,
            validation_passes=round(v * records),
        )
        for i, v in enumerate([validation] * hours if isinstance(validation, float) else validation)
    ]


# -- the window rule ------------------------------------------------------------------------------


def test_a_clear_drop_on_a_large_source_is_found_while_the_next_hour_fills():
    series = history(days=14, volume=2000)
    detector, _ = fed(series[:-2])
    closed, current = series[-2], series[-1]
    # Eight points down: far beyond the noise of 2,000 records, but one closed hour alone is not enough.
    assert only(detector.observe(with_rate(closed, GEOCODING_SUCCESS_RATE, 0.82)), GEOCODING_SUCCESS_RATE) == []
    half = with_rate(current, GEOCODING_SUCCESS_RATE, 0.82, attempts=current.geocoding_attempts // 2)
    (finding,) = only(detector.judge_partial(half, fraction=0.5), GEOCODING_SUCCESS_RATE)
    assert (finding.rule, finding.direction, finding.fraction, finding.partial) == ("rate", "drop", 0.5, True)
    assert finding.observed == pytest.approx(82.0, abs=0.1)
    assert finding.expected == pytest.approx(90.0, abs=0.5)
    assert finding.score <= -K_RATE
    assert finding.expected_low <= finding.expected <= finding.expected_high
    assert "over the last 1.50 h" in finding.explanation


def test_a_collapse_in_the_current_hour_alone_is_found_from_three_quarters_of_it():
    series = history(days=14, volume=2000)
    detector, _ = fed(series[:-2])
    # The hour before is an ordinary one, a point under expected: it does not confirm a window.
    assert only(detector.observe(with_rate(series[-2], GEOCODING_SUCCESS_RATE, 0.89)), GEOCODING_SUCCESS_RATE) == []
    current = series[-1]

    def so_far(fraction):
        return with_rate(current, GEOCODING_SUCCESS_RATE, 0.7, attempts=round(current.geocoding_attempts * fraction))

    assert only(detector.judge_partial(so_far(0.5), fraction=0.5), GEOCODING_SUCCESS_RATE) == []
    (finding,) = only(detector.judge_partial(so_far(0.75), fraction=0.75), GEOCODING_SUCCESS_RATE)
    assert finding.rule == "rate" and finding.observed == pytest.approx(70.0, abs=0.1)
    assert "over the last 0.75 h" in finding.explanation


def test_one_glitchy_hour_alone_is_not_found_although_its_score_is_beyond_the_threshold():
    series = history(days=14, volume=2000)
    detector, _ = fed(series[:-3])
    glitch = with_rate(series[-3], VALIDATION_PASS_RATE, 0.89)  # six points down for one hour
    baseline = detector.rates[VALIDATION_PASS_RATE]
    slot = detector.clock.slot(glitch.hour)
    p = baseline.expected(slot)
    n = glitch.validation_attempts
    own_score = rate_score(
        successes=glitch.validation_passes, attempts=n, p=p, variance=baseline.variance(attempts=n, p=p)
    )
    assert own_score < -K_RATE * CONFIG.single_hour_factor  # beyond even the single-hour score test
    assert only(detector.observe(glitch), VALIDATION_PASS_RATE) == []
    # The hours after it are normal: a window made low by the glitch alone stays quiet.
    for counts in series[-2:]:
        for fraction in (0.25, 0.5, 0.75):
            partial = with_rate(
                counts, VALIDATION_PASS_RATE, 0.95, attempts=round(counts.validation_attempts * fraction)
            )
            assert only(detector.judge_partial(partial, fraction=fraction), VALIDATION_PASS_RATE) == []
        assert only(detector.observe(counts), VALIDATION_PASS_RATE) == []


def test_three_failures_among_fifteen_records_are_not_over_called():
    series = rate_history(volume=15, validation=0.97)
    detector, _ = fed(series)
    hour = series[-1].hour + HOUR
    small = HourCounts(
        hour=hour, geocoding_attempts=15, geocoding_successes=14, validation_attempts=15, validation_passes=12
    )
    assert only(detector.observe(small), VALIDATION_PASS_RATE) == []
    assert detector.rates[VALIDATION_PASS_RATE].expected(detector.clock.slot(hour)) > 0.95


def test_the_same_share_of_failures_among_1500_records_is_found():
    series = rate_history(volume=1500, validation=0.97)
    detector, _ = fed(series)
    large = with_rate(series[-1], VALIDATION_PASS_RATE, 0.8, attempts=1500)
    (finding,) = only(detector.observe(replace(large, hour=series[-1].hour + HOUR)), VALIDATION_PASS_RATE)
    assert finding.rule == "rate"


def test_a_small_shift_on_a_small_source_adds_up_over_a_long_window():
    series = rate_history(volume=40)
    detector, _ = fed(series)
    rng = random.Random(9)
    found = []
    for i in range(24):
        hour = series[-1].hour + (i + 1) * HOUR
        counts = hour_counts(hour, records=normal_records(hour, volume=40, rng=rng), validation=0.87, rng=rng)
        found += only(detector.observe(counts), VALIDATION_PASS_RATE)
    assert found and {f.rule for f in found} == {"rate"}
    assert "over the last 13.00 h" in found[0].explanation  # 12 closed hours and the current one


def test_a_rate_rising_is_no_fault():
    series = rate_history(volume=1000, validation=0.85)
    detector, _ = fed(series)
    for i in range(6):
        perfect = with_rate(replace(series[-1], hour=series[-1].hour + (i + 1) * HOUR), VALIDATION_PASS_RATE, 1.0)
        assert only(detector.observe(perfect), VALIDATION_PASS_RATE) == []


def test_findings_stop_when_the_incident_stops():
    series = history(days=16, volume=1000)
    detector, _ = fed(series[: 14 * 24])
    incident, after = series[14 * 24 : 14 * 24 + 4], series[14 * 24 + 4 : 14 * 24 + 16]
    for counts in incident:
        assert only(detector.observe(with_rate(counts, GEOCODING_SUCCESS_RATE, 0.7)), GEOCODING_SUCCESS_RATE)
    for counts in after:
        for fraction in (0.25, 0.5, 0.75):
            so_far = with_rate(
                counts, GEOCODING_SUCCESS_RATE, 0.9, attempts=round(counts.geocoding_attempts * fraction)
            )
            assert only(detector.judge_partial(so_far, fraction=fraction), GEOCODING_SUCCESS_RATE) == []
        assert only(detector.observe(counts), GEOCODING_SUCCESS_RATE) == []


# -- the CUSUM rule -------------------------------------------------------------------------------


def make_steady_detector(**options):
    detector, findings = fed(steady(14 * 24), **options)
    assert findings == []
    return detector


# A 7-point hour, then hours 3.8 points down: every hour is far beyond its noise (1,000 records
# an hour at an exactly learnt 95 %), but the later ones are not "clearly low" (4 points) on their
# own, so no window may reach back over the first, and one hour alone needs 12 points.
SHORTFALL = [0.88, 0.912, 0.912]


def test_a_shortfall_held_just_under_the_point_floor_after_a_sharper_hour_is_found_by_the_cusum():
    detector = make_steady_detector()
    hours = steady(len(SHORTFALL), start=START + 14 * 24 * HOUR, validation=SHORTFALL)
    rules = [[f.rule for f in only(detector.observe(counts), VALIDATION_PASS_RATE)] for counts in hours]
    assert rules == [[], [], ["cusum"]]


def test_a_cusum_finding_explains_the_run():
    detector = make_steady_detector()
    hours = steady(len(SHORTFALL), start=START + 14 * 24 * HOUR, validation=SHORTFALL)
    (finding,) = [f for counts in hours for f in only(detector.observe(counts), VALIDATION_PASS_RATE)]
    assert (finding.direction, finding.observed, finding.expected) == ("drop", 91.2, 95.0)
    assert finding.score <= -K_RATE
    assert "4.9 points below expected on average over the last 3.0 h" in finding.explanation
    assert "(146 fewer successes among 3000)" in finding.explanation
    assert "≥ 11.2" in finding.explanation  # 10 × k / 4 at k = 4.5


def test_a_cusum_run_above_its_threshold_says_nothing_once_the_current_hour_is_back_to_normal():
    detector = make_steady_detector()
    hours = steady(len(SHORTFALL) + 2, start=START + 14 * 24 * HOUR, validation=[*SHORTFALL, 0.95, 0.95])
    for counts in hours[: len(SHORTFALL)]:
        detector.observe(counts)
    recovered, after = hours[len(SHORTFALL) :]
    # A quarter of a normal hour leaves the run (still 4.5 points down, pooled) above its threshold.
    quarter = replace(recovered, validation_attempts=250, validation_passes=round(250 * 0.95))
    assert only(detector.judge_partial(quarter, fraction=0.25), VALIDATION_PASS_RATE) == []
    assert only(detector.observe(recovered), VALIDATION_PASS_RATE) == []
    assert only(detector.observe(after), VALIDATION_PASS_RATE) == []


def slide_rules(**options) -> list[str]:
    """The rules of the validation findings while the rate slides a quarter of a point an hour to 6 points."""
    series = history(days=14, volume=300, seed=2)
    detector, _ = fed(series, **options)
    rng = random.Random(2)
    rules = []
    for i in range(48):
        hour = series[-1].hour + (i + 1) * HOUR
        validation = 0.95 - min(0.06, 0.0025 * (i + 1))
        counts = hour_counts(hour, records=normal_records(hour, volume=300, rng=rng), validation=validation, rng=rng)
        rules += [f.rule for f in only(detector.observe(counts), VALIDATION_PASS_RATE)]
    return rules


def test_a_slow_slide_on_a_less_sensitive_detector_is_found_by_the_cusum_before_any_window():
    rules = slide_rules(sensitivity=9)
    assert rules and rules[0] == "cusum"


@pytest.mark.xfail(
    strict=True,
    reason="at the default sensitivity the 6- and 9-hour windows (and the 4-point floor) always fire before "
    "the CUSUM: a slide is reported by rule 'rate' and the cusum rule never fires (0 of 120 simulated slides, "
    "0 findings over 4 full development seeds), although docs/anomaly-detection.md makes slides its business",
)
def test_a_slow_slide_at_the_default_sensitivity_is_first_found_by_the_cusum():
    rules = slide_rules()
    assert rules and rules[0] == "cusum"


def test_a_point_finding_starts_the_cusum_afresh_so_no_cusum_finding_follows_recovery():
    detector = make_steady_detector()
    start = START + 14 * 24 * HOUR
    collapse = [0.5, 0.5]  # found by the point rules
    recovery = [0.95] * 3 + [0.935] * 6  # normal, then a dip of 1.5 points: not an incident
    rules = [
        f.rule
        for counts in steady(len(collapse) + len(recovery), start=start, validation=collapse + recovery)
        for f in only(detector.observe(counts), VALIDATION_PASS_RATE)
    ]
    assert "cusum" not in rules and rules  # the collapse itself is found


# -- helpers ---------------------------------------------------------------------------------------


def test_a_finding_rounds_volume_to_records_and_rates_to_a_tenth_of_a_point():
    volume = _finding(VOLUME, START, 0.833333, "drop", 12.6, 954.24, 429.44, 2576.46, -30.016, "level", "text")
    rate = _finding(VALIDATION_PASS_RATE, START, 1.0, "drop", 87.46, 94.96, 90.04, 99.96, -5.556, "rate", "why")
    assert (volume.observed, volume.expected, volume.expected_low, volume.expected_high) == (13, 954.2, 429.4, 2576.5)
    assert (volume.fraction, volume.score, volume.partial) == (0.8333, -30.02, True)
    assert (rate.observed, rate.expected, rate.expected_low, rate.expected_high) == (87.5, 95.0, 90.0, 100.0)
    assert (rate.fraction, rate.score, rate.partial) == (1.0, -5.56, False)
    assert volume.explanation == "volume level: text"
    assert rate.explanation == "validation_pass_rate rate: why"


def test_closed_hours_without_records_do_not_veto_a_window():
    assert _low_before(0, 0, 0.0, 0.0, CONFIG)


def binomial(n, p):
    return n * p * (1 - p)


@pytest.mark.parametrize(
    ("successes", "attempts", "p", "variance", "low"),
    [
        (800, 1000, 0.9, binomial(1000, 0.9), True),  # 10 points, far beyond the noise
        (885, 1000, 0.9, binomial(1000, 0.9), False),  # 1.5 points: under half the 4-point floor
        (870, 1000, 0.9, 25 * binomial(1000, 0.9), False),  # 3 points, but within a wobbly source's noise
        (17, 20, 0.95, binomial(20, 0.95), False),  # 10 points of 20 records: z about -1.6
    ],
)
def test_the_closed_hours_before_the_current_one_must_have_been_low_themselves(successes, attempts, p, variance, low):
    assert _low_before(successes, attempts, attempts * p, variance, CONFIG) is low
