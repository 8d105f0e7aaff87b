"""The robust seasonal detector and the z-score baseline on hand-built hourly series."""

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from monitoring.anomaly.detector import (
    GEOCODING_SUCCESS_RATE,
    VALIDATION_PASS_RATE,
    VOLUME,
    DetectorConfig,
    HourCounts,
    Point,
    detect,
    detect_zscore,
    points,
    robust_estimate,
    training_window,
)

START = datetime(2025, 3, 3, tzinfo=UTC)  # a Monday
TRAINING = 14 * 24
CONFIG = DetectorConfig()


def _hour(index: int) -> datetime:
    return START + timedelta(hours=index)


def _volume(values) -> list[Point]:
    return [Point(hour=_hour(i), value=float(v), attempts=int(v)) for i, v in enumerate(values)]


def _rates(pairs) -> list[Point]:
    return [Point(hour=_hour(i), value=100.0 * s / n if n else None, attempts=n) for i, (s, n) in enumerate(pairs)]


def _noisy_volume(*, hours: int, level, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    return [max(0, round(rng.gauss(level(i), math.sqrt(level(i)) * 1.2))) for i in range(hours)]


def _noisy_rate(*, hours: int, p: float, n: int, seed: int = 2) -> list[tuple[int, int]]:
    rng = random.Random(seed)
    sd = math.sqrt(n * p * (1 - p))
    return [(min(n, max(0, round(rng.gauss(n * p, sd)))), n) for _ in range(hours)]


def _judge(series: list[Point], metric: str, *, config: DetectorConfig = CONFIG, zscore: bool = False):
    """Walk forward over every hour after the first training window; returns the anomalies found."""
    found = []
    for t in range(TRAINING, len(series)):
        start = t - training_window(hour=series[t].hour, training_days=14)
        kwargs = {"source": "s", "metric": metric, "history": series[start:t], "current": series[t]}
        anomaly = detect_zscore(**kwargs, config=config) if zscore else detect(**kwargs, config=config)
        if anomaly is not None:
            found.append(anomaly)
    return found


def _last(series: list[Point], metric: str, current: Point, *, config: DetectorConfig = CONFIG):
    return detect(source="s", metric=metric, history=series[-TRAINING:], current=current, config=config)


def test_a_flat_noisy_series_raises_nothing():
    volume = _volume(_noisy_volume(hours=21 * 24, level=lambda i: 200))
    rates = _rates(_noisy_rate(hours=21 * 24, p=0.9, n=200))
    assert _judge(volume, VOLUME) == []
    assert _judge(rates, GEOCODING_SUCCESS_RATE) == []


@pytest.mark.parametrize(("observed", "direction"), [(40, "drop"), (0, "drop"), (420, "spike")])
def test_a_volume_drop_or_spike_is_flagged_with_its_direction(observed, direction):
    series = _volume(_noisy_volume(hours=TRAINING, level=lambda i: 200))
    anomaly = _last(series, VOLUME, Point(hour=_hour(TRAINING), value=observed, attempts=observed))
    assert anomaly is not None
    assert anomaly.direction == direction
    assert anomaly.observed == observed
    assert 190 <= anomaly.expected <= 210
    assert not anomaly.expected_low <= observed <= anomaly.expected_high
    assert (anomaly.score < -4) if direction == "drop" else (anomaly.score > 4)


def test_a_rate_collapse_is_flagged_as_a_drop_within_percent_bounds():
    series = _rates(_noisy_rate(hours=TRAINING, p=0.9, n=200))
    anomaly = _last(series, VALIDATION_PASS_RATE, Point(hour=_hour(TRAINING), value=60.0, attempts=200))
    assert anomaly is not None
    assert (anomaly.metric, anomaly.direction, anomaly.observed) == (VALIDATION_PASS_RATE, "drop", 60.0)
    assert 88 <= anomaly.expected <= 92
    assert 60 < anomaly.expected_low < anomaly.expected < anomaly.expected_high <= 100


def test_the_expected_range_contains_normal_values():
    volume = _volume(_noisy_volume(hours=TRAINING + 48, level=lambda i: 300 + 150 * math.sin(i / 24 * 2 * math.pi)))
    rates = _rates(_noisy_rate(hours=TRAINING + 48, p=0.85, n=150))
    for series, metric in ((volume, VOLUME), (rates, GEOCODING_SUCCESS_RATE)):
        for t in range(TRAINING, len(series)):
            estimate = robust_estimate(
                metric=metric, history=series[t - TRAINING : t], current=series[t], config=CONFIG
            )
            low, high = estimate.bounds(CONFIG.sensitivity)
            assert low <= series[t].value <= high
            assert low < estimate.expected < high


def test_a_normal_night_time_dip_is_not_flagged_but_a_daytime_drop_to_night_level_is():
    # 400 records an hour at 14:00 UTC, 60 at 02:00: the same 60 is normal at night and a collapse at noon.
    def level(i: int) -> float:
        return 230 + 170 * math.cos(2 * math.pi * ((i % 24) - 14) / 24)

    series = _volume(_noisy_volume(hours=TRAINING + 48, level=level))
    assert _judge(series, VOLUME) == []

    noon = TRAINING + 14
    dropped = Point(hour=_hour(noon), value=60.0, attempts=60)
    anomaly = _last(series[:noon], VOLUME, dropped)
    assert anomaly is not None and anomaly.direction == "drop"
    # The plain z-score sees 60 as ordinary: the daily swing has inflated its standard deviation.
    assert (
        detect_zscore(source="s", metric=VOLUME, history=series[:noon][-TRAINING:], current=dropped, config=CONFIG)
        is None
    )


def test_quiet_weekends_are_not_flagged_when_the_weekday_term_is_on():
    def level(i: int) -> float:
        return 100 if _hour(i).weekday() >= 5 else 300

    series = _volume(_noisy_volume(hours=TRAINING + 7 * 24, level=level))
    assert _judge(series, VOLUME) == []
    # Without it, every weekend hour looks like a drop against a profile made mostly of weekdays.
    assert len(_judge(series, VOLUME, config=DetectorConfig(weekly=False))) > 24


def test_a_day_long_incident_in_the_training_window_does_not_skew_its_weekday():
    pairs = _noisy_rate(hours=TRAINING + 3 * 24, p=0.9, n=200)
    incident = 9 * 24
    assert _hour(incident).weekday() == _hour(TRAINING + 2 * 24).weekday() == 2
    # One Wednesday at 50 % among the two in the window: the next Wednesday's normal 90 % must not
    # read as a spike (a median pooled over both Wednesdays would sit halfway).
    pairs[incident : incident + 24] = [(100, 200)] * 24
    assert _judge(_rates(pairs), GEOCODING_SUCCESS_RATE) == []


def test_rates_of_under_sampled_hours_are_not_judged():
    series = _rates(_noisy_rate(hours=TRAINING, p=0.9, n=200))
    tiny = Point(hour=_hour(TRAINING), value=0.0, attempts=CONFIG.min_attempts - 1)
    enough = Point(hour=_hour(TRAINING), value=0.0, attempts=CONFIG.min_attempts)
    assert robust_estimate(metric=GEOCODING_SUCCESS_RATE, history=series, current=tiny, config=CONFIG) is None
    assert _last(series, GEOCODING_SUCCESS_RATE, tiny) is None
    assert _last(series, GEOCODING_SUCCESS_RATE, enough).direction == "drop"
    # Nor does an under-sampled history train a baseline.
    sparse = _rates(_noisy_rate(hours=TRAINING, p=0.9, n=CONFIG.min_attempts - 1))
    current = Point(hour=_hour(TRAINING), value=10.0, attempts=500)
    assert _last(sparse, GEOCODING_SUCCESS_RATE, current) is None


def test_a_quiet_hour_gets_the_binomial_noise_of_its_own_sample():
    # Busy hours (n=1000) make a tight baseline; 30 records at 75 % are within binomial noise
    # (±5.5 points at p=0.9), the same 75 % over 1000 records is not.
    series = _rates(_noisy_rate(hours=TRAINING, p=0.9, n=1000))
    assert _last(series, GEOCODING_SUCCESS_RATE, Point(hour=_hour(TRAINING), value=75.0, attempts=30)) is None
    busy = _last(series, GEOCODING_SUCCESS_RATE, Point(hour=_hour(TRAINING), value=75.0, attempts=1000))
    assert busy.direction == "drop"


def test_a_rate_without_attempts_is_undefined_and_an_outage_is_a_volume_drop():
    counts = [HourCounts(hour=_hour(i), geocoding_attempts=200, geocoding_successes=180) for i in range(TRAINING)]
    counts.append(HourCounts(hour=_hour(TRAINING)))
    volume, rates = points(metric=VOLUME, counts=counts), points(metric=GEOCODING_SUCCESS_RATE, counts=counts)
    assert rates[-1].value is None
    assert _last(rates[:-1], GEOCODING_SUCCESS_RATE, rates[-1]) is None
    outage = _last(volume[:-1], VOLUME, volume[-1])
    assert (outage.observed, outage.expected, outage.direction) == (0, 200.0, "drop")


def test_a_perfectly_flat_series_does_not_explode_on_a_small_wobble():
    series = _volume([100] * TRAINING)
    assert _last(series, VOLUME, Point(hour=_hour(TRAINING), value=104.0, attempts=104)) is None
    assert _last(series, VOLUME, Point(hour=_hour(TRAINING), value=55.0, attempts=55)).direction == "drop"
    rates = _rates([(900, 1000)] * TRAINING)
    assert _last(rates, VALIDATION_PASS_RATE, Point(hour=_hour(TRAINING), value=88.5, attempts=1000)) is None


def test_too_little_history_is_a_cold_start_not_an_anomaly():
    series = _volume([100] * (CONFIG.min_training_points - 1))
    current = Point(hour=_hour(len(series)), value=0.0, attempts=0)
    assert _last(series, VOLUME, current) is None


def test_the_anomaly_carries_the_documented_fields():
    series = _volume(_noisy_volume(hours=TRAINING, level=lambda i: 200))
    anomaly = _last(series, VOLUME, Point(hour=_hour(TRAINING), value=10.0, attempts=10))
    assert anomaly.as_dict() == {
        "source": "s",
        "metric": VOLUME,
        "hour": "2025-03-17T00:00:00Z",
        "observed": 10,
        "expected": anomaly.expected,
        "expected_low": anomaly.expected_low,
        "expected_high": anomaly.expected_high,
        "score": anomaly.score,
        "direction": "drop",
    }
    assert anomaly.score == round(anomaly.score, 2)


def test_unknown_metric_is_refused():
    with pytest.raises(ValueError, match="unknown metric"):
        points(metric="latency", counts=[])
