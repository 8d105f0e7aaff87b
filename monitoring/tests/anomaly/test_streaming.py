"""The streaming detector: what it flags, what it lets pass, and how it explains itself."""

import math
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from monitoring.anomaly.contract import LEARNING, READY
from monitoring.anomaly.detector import GEOCODING_SUCCESS_RATE, VALIDATION_PASS_RATE, VOLUME, HourCounts
from monitoring.anomaly.streaming import StreamingConfig, make_detector

START = datetime(2025, 3, 3, tzinfo=UTC)  # a Monday
HOUR = timedelta(hours=1)


def hour_counts(hour, *, records, geocoding=0.9, validation=0.95, rng) -> HourCounts:
    def successes(p):
        return min(records, max(0, round(rng.gauss(records * p, math.sqrt(records * p * (1 - p)) or 0.0))))

    return HourCounts(
        hour=hour,
        geocoding_attempts=records,
        geocoding_successes=successes(geocoding),
        validation_attempts=records,
        validation_passes=successes(validation),
    )


def normal_records(hour, *, volume, rng, tz="UTC", weekend=(5, 6), weekend_factor=0.6) -> int:
    local = hour.astimezone(ZoneInfo(tz))
    mean = volume * (1 + 0.5 * math.cos(2 * math.pi * (local.hour - 14) / 24))
    if local.weekday() in weekend:
        mean *= weekend_factor
    return max(0, round(rng.gauss(mean, math.sqrt(mean) + 0.08 * mean)))


def history(*, days=14, volume=400, tz="UTC", seed=1, start=START, **kwargs) -> list[HourCounts]:
    rng = random.Random(seed)
    hours = [start + i * HOUR for i in range(days * 24)]
    return [hour_counts(h, records=normal_records(h, volume=volume, rng=rng, tz=tz, **kwargs), rng=rng) for h in hours]


def fed(series, *, tz="UTC", **options):
    detector = make_detector(tz=tz, **options)
    findings = [f for counts in series for f in detector.observe(counts)]
    return detector, findings


def test_a_new_detector_is_learning_and_judges_nothing_until_a_day_is_seen():
    series = history(days=2)
    detector = make_detector()
    for counts in series[:23]:
        assert detector.observe(counts) == []
    assert detector.readiness() == replace(detector.readiness(), state=LEARNING, hours_seen=23, hours_needed=24)
    assert detector.judge_partial(HourCounts(hour=series[23].hour), fraction=0.9) == []
    detector.observe(series[23])
    assert detector.readiness().state == READY


def test_two_weeks_of_normal_traffic_raise_no_finding():
    _, findings = fed(history(days=21, seed=4))
    assert findings == []


def test_an_outage_is_found_once_the_silence_runs_into_the_next_hour():
    series = history(days=15)[: 14 * 24 + 13]  # up to 13:00 UTC, near the daily peak
    detector, _ = fed(series)
    hour = series[-1].hour + HOUR
    # One empty hour is what a late report looks like: not yet an incident.
    assert [f for f in detector.judge_partial(HourCounts(hour=hour), fraction=0.75) if f.metric == VOLUME] == []
    assert [f for f in detector.observe(HourCounts(hour=hour)) if f.metric == VOLUME] == []
    # Nothing in the first quarter of the next hour either: a late batch would have caught up by now.
    (finding,) = [f for f in detector.judge_partial(HourCounts(hour=hour + HOUR), fraction=0.25) if f.metric == VOLUME]
    assert finding.direction == "drop" and finding.rule == "outage" and finding.partial
    assert finding.observed == 0 and finding.expected > 50
    assert finding.expected_low <= finding.expected <= finding.expected_high
    assert "expected" in finding.explanation and finding.score < -4


def fed_with_partials(series, *, arrival, tz="UTC", **options):
    """Every hour judged at its quarters (``arrival``: the share of an hour's records in by each) and observed."""
    detector = make_detector(tz=tz, **options)
    findings = []
    for counts in series:
        for quarter, share in zip((0.25, 0.5, 0.75), arrival, strict=True):
            partial = replace(counts, geocoding_attempts=round(counts.geocoding_attempts * share))
            findings += detector.judge_partial(partial, fraction=quarter)
        findings += detector.observe(counts)
    return detector, findings


def test_a_batch_in_the_first_quarter_is_no_flood_and_one_in_the_last_is_no_outage():
    early, _ = fed_with_partials(history(days=14), arrival=(1.0, 1.0, 1.0))
    late, _ = fed_with_partials(history(days=14), arrival=(0.0, 0.0, 0.0))
    normal = history(days=15)[-1]
    assert early.judge_partial(normal, fraction=0.25) == []  # the whole hour at :15, as every hour
    assert [f for f in late.judge_partial(HourCounts(hour=normal.hour), fraction=0.75) if f.metric == VOLUME] == []
    # The learnt curve says what is due: all of it by :15 for the early batch, so a flood is still a flood.
    flood = replace(normal, geocoding_attempts=6 * normal.geocoding_attempts)
    assert [f.rule for f in early.judge_partial(flood, fraction=0.25) if f.metric == VOLUME] == ["flood"]


def test_silence_from_a_quarter_to_the_hour_is_an_outage_a_quarter_past():
    series = history(days=14)
    detector, _ = fed_with_partials(series[:-2], arrival=(0.25, 0.5, 0.75))
    last = series[-2]
    quarters = [round(last.geocoding_attempts * q) for q in (0.25, 0.5, 0.75)]
    for quarter, arrived in zip((0.25, 0.5, 0.75), quarters, strict=True):
        detector.judge_partial(replace(last, geocoding_attempts=arrived), fraction=quarter)
    detector.observe(
        replace(
            last, geocoding_attempts=quarters[-1], geocoding_successes=0, validation_attempts=0, validation_passes=0
        )
    )  # silent from :45
    (finding,) = [
        f for f in detector.judge_partial(HourCounts(hour=series[-1].hour), fraction=0.25) if f.metric == VOLUME
    ]
    assert (finding.rule, finding.direction) == ("outage", "drop") and "nothing since" in finding.explanation


def test_one_empty_hour_then_its_catch_up_is_quiet_even_for_a_source_never_seen_late():
    series = history(days=14)
    detector, _ = fed(series[:-2], config=replace(StreamingConfig(), mature_hours=24))
    late, catch_up = series[-2], series[-1]
    both = replace(catch_up, geocoding_attempts=catch_up.geocoding_attempts + late.geocoding_attempts)
    assert [f for f in detector.observe(HourCounts(hour=late.hour)) if f.metric == VOLUME] == []
    assert [f for f in detector.observe(both) if f.metric == VOLUME] == []


def test_a_public_holiday_at_weekend_level_is_not_a_drop():
    series = history(days=22, weekend=(5, 6), weekend_factor=0.5, seed=9)
    # Wednesday of the fourth week runs all day at 45 % of a weekday, like the weekend (× 0.9).
    holiday = START.date() + timedelta(days=16)
    series = [
        replace(c, geocoding_attempts=round(0.45 * c.geocoding_attempts)) if c.hour.date() == holiday else c
        for c in series
    ]
    _, findings = fed(series)
    assert [f for f in findings if f.metric == VOLUME and f.hour.date() == holiday] == []


def test_judging_the_partial_hour_leaves_the_detector_unchanged():
    series = history(days=10)
    detector, _ = fed(series[:-1])
    twin, _ = fed(series[:-1])
    detector.judge_partial(HourCounts(hour=series[-1].hour), fraction=0.5)
    assert detector.observe(series[-1]) == twin.observe(series[-1])
    assert detector.readiness() == twin.readiness()


def test_an_empty_hour_then_its_catch_up_is_not_an_incident_for_a_source_that_reports_late():
    series = history(days=14)
    # The source delivered late in its first week (an hour short, the next one carrying it) and again later.
    for at in (100, 260):
        moved = series[at].geocoding_attempts
        series[at] = HourCounts(hour=series[at].hour)
        nxt = series[at + 1]
        series[at + 1] = replace(
            nxt,
            geocoding_attempts=nxt.geocoding_attempts + moved,
            geocoding_successes=nxt.geocoding_successes + round(0.9 * moved),
            validation_attempts=nxt.validation_attempts + moved,
            validation_passes=nxt.validation_passes + round(0.95 * moved),
        )
    _, findings = fed(series[:-2] + [HourCounts(hour=series[-2].hour)])
    detector, _ = fed(series[:-2] + [HourCounts(hour=series[-2].hour)])
    assert [f for f in findings if f.metric == VOLUME] == []  # neither the late hours nor their catch-ups
    late = series[-1]
    catch_up = replace(late, geocoding_attempts=2 * late.geocoding_attempts)
    assert (
        detector.judge_partial(replace(catch_up, geocoding_attempts=catch_up.geocoding_attempts // 2), fraction=0.5)
        == []
    )
    assert [f for f in detector.observe(catch_up) if f.metric == VOLUME] == []


def test_a_level_drop_lasting_two_hours_is_found_on_a_late_reporting_source():
    series = history(days=14)
    detector, _ = fed(series[:-3], config=replace(StreamingConfig(), mature_hours=10**6))  # assumed late-prone
    low = [replace(c, geocoding_attempts=c.geocoding_attempts // 5) for c in series[-3:-1]]
    assert [f for f in detector.observe(low[0]) if f.metric == VOLUME] == []  # one short hour may be a late batch
    found = [f for f in detector.observe(low[1]) if f.metric == VOLUME]
    assert [(f.direction, f.rule) for f in found] == [("drop", "level")]


def test_a_two_record_shortfall_on_a_tiny_source_is_no_incident():
    series = history(days=14, volume=3)
    detector, findings = fed(series)
    assert [f for f in findings if f.metric == VOLUME] == []
    assert detector.judge_partial(HourCounts(hour=series[-1].hour + HOUR), fraction=0.9) == []


def test_a_news_burst_does_not_page_but_a_duplicate_flood_does():
    series = history(days=14)
    burst = [
        replace(c, geocoding_attempts=round(c.geocoding_attempts * 1.7))
        for c in history(days=1, seed=5, start=series[-1].hour + HOUR)
    ]
    detector, findings = fed(series + burst)
    assert [f for f in findings if f.metric == VOLUME] == []
    hour = burst[-1].hour + HOUR
    expected = detector.volume.expected(detector.clock.slot(hour)) * max(detector.volume.recent_pace(), 1.0)
    flood = HourCounts(hour=hour, geocoding_attempts=round(5 * expected))
    (finding,) = [f for f in detector.observe(flood) if f.metric == VOLUME]
    assert (finding.direction, finding.rule) == ("spike", "flood")


def test_a_geocoding_collapse_is_found_and_a_single_glitch_hour_is_not():
    series = history(days=14, volume=800)
    detector, _ = fed(series[:-2])
    glitch = replace(series[-2], geocoding_successes=round(series[-2].geocoding_attempts * 0.85))  # 5 points, 1 h
    assert [f for f in detector.observe(glitch) if f.metric == GEOCODING_SUCCESS_RATE] == []
    collapse = [
        replace(c, geocoding_successes=round(c.geocoding_attempts * 0.6))
        for c in history(days=1, seed=3, start=series[-1].hour)[:3]
    ]
    found = [f for c in collapse for f in detector.observe(c) if f.metric == GEOCODING_SUCCESS_RATE]
    assert found and found[0].direction == "drop" and found[0].rule == "rate"
    assert found[0].observed < 65 and found[0].expected > 85


def test_a_small_sample_rate_wobble_is_not_flagged():
    """4 failures among 38 records at an expected 95 %: within beta-binomial noise."""
    series = history(days=14, volume=40)
    detector, _ = fed(series)
    hour = series[-1].hour + HOUR
    counts = HourCounts(
        hour=hour, geocoding_attempts=38, geocoding_successes=34, validation_attempts=38, validation_passes=34
    )
    assert [f for f in detector.observe(counts) if f.metric == VALIDATION_PASS_RATE] == []


def test_a_validation_degradation_sliding_in_over_four_hours_is_found_within_seven():
    series = history(days=14, volume=150)
    detector, _ = fed(series)
    rng = random.Random(8)
    start = series[-1].hour + HOUR
    found_at = None
    for i in range(24):
        hour = start + i * HOUR
        drop = 0.08 * min(1.0, (i + 1) / 4)  # slides to 8 points below normal over 4 hours
        counts = hour_counts(hour, records=normal_records(hour, volume=150, rng=rng), validation=0.95 - drop, rng=rng)
        if any(f.metric == VALIDATION_PASS_RATE for f in detector.observe(counts)):
            found_at = i + 1
            break
    # Seven hours at the default sensitivity (4.5): the first hours of the slide are within the noise.
    assert found_at is not None and found_at <= 7


def test_the_daily_rhythm_is_learnt_in_the_sources_time_zone_across_a_clock_change():
    # Kyiv moves its clocks on 2025-03-30; the source's day follows local time.
    start = datetime(2025, 3, 10, tzinfo=UTC)
    series = history(days=28, tz="Europe/Kyiv", start=start, seed=6)
    _, local = fed(series, tz="Europe/Kyiv")
    assert [f for f in local if f.metric == VOLUME] == []


def test_a_fri_sat_weekend_is_learnt():
    series = history(days=28, tz="Asia/Damascus", weekend=(4, 5), weekend_factor=0.4, seed=2)
    _, findings = fed(series, tz="Asia/Damascus")
    assert [f for f in findings if f.metric == VOLUME and f.hour > series[8 * 24].hour] == []


def test_a_long_outage_becomes_the_new_normal_after_adapt_hours():
    series = history(days=14)
    silent = [HourCounts(hour=series[-1].hour + (i + 1) * HOUR) for i in range(60)]
    _, findings = fed(series + silent)
    flagged = sorted({f.hour for f in findings if f.metric == VOLUME})
    assert flagged and flagged[0] <= silent[1].hour
    assert flagged[-1] < silent[-1].hour


@pytest.mark.parametrize("sensitivity", [0, -1])
def test_a_non_positive_sensitivity_is_refused(sensitivity):
    with pytest.raises(ValueError, match="positive"):
        make_detector(sensitivity=sensitivity)


def test_an_unknown_time_zone_is_refused():
    with pytest.raises(Exception, match="Mars"):
        make_detector(tz="Mars/Olympus")


def test_rate_overdispersion_is_calibrated_from_hours_of_mixed_sizes():
    from monitoring.anomaly.rates import calibrate_rho

    rng = random.Random(3)
    p, concentration = 0.9, 99.0  # beta-binomial: rho = 1 / (concentration + 1) = 0.01
    squares, sizes = [], []
    for i in range(600):
        n = 20 if i % 3 == 0 else 2000  # quiet nights and busy days
        q = rng.betavariate(p * concentration, (1 - p) * concentration)
        x = sum(rng.random() < q for _ in range(n))
        squares.append((x - n * p) ** 2 / (n * p * (1 - p)))
        sizes.append(n - 1)
    assert 0.006 <= calibrate_rho(squares, sizes) <= 0.016
    # Binomial hours need no inflation.
    binomial = [rng.gauss(0, 1) ** 2 for _ in range(600)]
    assert calibrate_rho(binomial, sizes) < 0.001
