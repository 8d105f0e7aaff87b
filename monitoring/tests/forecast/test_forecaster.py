"""The per-source forecaster: learning, trends, local-time seasonality, calibrated bands, explanations."""

import json
import math
from datetime import UTC, datetime

import pytest

from monitoring.anomaly.detector import HourCounts
from monitoring.forecast import BELOW, LEARNING, NO_DATA, READY, make_forecaster
from monitoring.tests.forecast.series import HOUR, START, daily, fed, hours

GEOCODING = "geocoding_success_rate"
VALIDATION = "validation_pass_rate"


def test_too_little_history_gives_no_forecast_with_the_learning_reason():
    forecaster = fed(hours(30))
    f = forecaster.forecast(metric=GEOCODING, horizon_hours=24)
    assert f.state == LEARNING and not f.ready
    assert f.reason == "learning: 30 of 72 hours"
    assert f.path == ()
    crossing = f.time_to_cross(threshold=85.0, direction=BELOW)
    assert crossing.hours is None and crossing.reason == "learning: 30 of 72 hours"
    assert forecaster.readiness().state == "learning"
    assert forecaster.readiness().hours_seen == 30
    with pytest.raises(LookupError):
        f.at(6)


def test_ready_after_three_days():
    forecaster = fed(hours(72))
    assert forecaster.readiness().state == "ready"
    assert forecaster.forecast(metric="volume").state == READY


def test_a_linear_slide_is_projected_to_cross_at_the_right_hour_within_its_band():
    n, slide = 10 * 24, 24  # 99 % for nine days, then −0.4 points an hour for the last day

    def geocoding(i: int) -> float:
        return 0.99 - 0.004 * max(i - (n - slide) + 1, 0)

    forecaster = fed(hours(n, volume=lambda i, local: 2000.0, geocoding=geocoding, noise=0.02))
    f = forecaster.forecast(metric=GEOCODING, horizon_hours=24)
    assert f.trend.significant and f.trend.slope == pytest.approx(-0.4, abs=0.1)
    # True rate now 89.4 %: below 85 % after 11-12 more hours.
    crossing = f.time_to_cross(threshold=85.0, direction=BELOW)
    assert crossing.reason is None
    assert 9 <= crossing.hours <= 13
    assert crossing.earliest - 1 <= 12 and crossing.latest + 1 >= 11
    assert crossing.hour == f.issued_after + crossing.hours * HOUR
    assert "trend" in crossing.explanation
    # The projection keeps sliding and its band holds where the line goes.
    at24 = f.at(24)
    assert at24.low <= 99.0 - 0.4 * (slide + 24) + 2.0 and at24.value < f.at(6).value < f.current


def test_a_flat_rate_has_no_trend_and_no_crossing():
    forecaster = fed(hours(10 * 24, geocoding=lambda i: 0.92))
    f = forecaster.forecast(metric=GEOCODING)
    crossing = f.time_to_cross(threshold=85.0, direction=BELOW)
    assert crossing.hours is None
    assert crossing.reason in ("no trend", "not within 24 h at the current trend")
    assert abs(f.at(24).value - 92.0) < 1.5


def test_a_seasonal_volume_is_forecast_with_its_daily_cycle_in_local_time():
    # Istanbul is UTC+3 all year: the local 14:00 peak is 11:00 UTC, the 02:00 trough 23:00 UTC.
    counts = hours(14 * 24 + 5, tz="Europe/Istanbul", volume=lambda i, local: daily(local), noise=0.05)
    f = fed(counts, tz="Europe/Istanbul").forecast(metric="volume", horizon_hours=24)
    by_hour = {p.hour.hour: p for p in f.path}
    assert max(by_hour, key=lambda h: by_hour[h].value) == 11
    assert min(by_hour, key=lambda h: by_hour[h].value) == 23
    for p in f.path:
        local = (p.hour.hour + 3) % 24
        assert p.value == pytest.approx(daily(local), rel=0.12)
        assert p.low <= daily(local) <= p.high
    assert "local-hour profile over 14 local days" in f.seasonality


def test_the_daily_cycle_follows_the_local_clock_across_a_clock_change():
    # Kyiv leaves summer time on 25 October 2026: the local 14:00 peak moves from 11:00 to 12:00 UTC.
    start = datetime(2026, 10, 5, tzinfo=UTC)

    def sharp(i: int, local: float) -> float:  # a one-hour news peak at 14:00 local
        return 50.0 + 400.0 * math.exp(-0.5 * (min(abs(local - 14.0), 24 - abs(local - 14.0)) / 0.8) ** 2)

    counts = hours(21 * 24, tz="Europe/Kyiv", start=start, volume=sharp, noise=0.03)
    local_clock = fed(counts, tz="Europe/Kyiv").forecast(metric="volume")
    utc_clock = fed(counts, tz="UTC").forecast(metric="volume")
    assert counts[-1].hour == datetime(2026, 10, 25, 23, tzinfo=UTC)

    def peak(f) -> int:
        return max(f.path, key=lambda p: p.value).hour.hour

    assert peak(local_clock) == 12
    assert peak(utc_clock) == 11


def test_the_band_covers_about_eighty_percent_of_what_happens():
    counts = hours(24 * 24, volume=lambda i, local: daily(local, mean=80.0), noise=0.2, seed=11)
    forecaster = make_forecaster()
    projected = {}
    for i, c in enumerate(counts):
        forecaster.observe(c)
        if i >= 14 * 24:
            for metric in ("volume", GEOCODING):
                p = forecaster.forecast(metric=metric).at(6)
                projected[(metric, i + 6)] = (p.low, p.high)
    for metric in ("volume", GEOCODING):
        inside = total = 0
        for (m, target), (low, high) in projected.items():
            if m != metric or target >= len(counts):
                continue
            c = counts[target]
            value = c.geocoding_attempts if m == "volume" else 100 * c.geocoding_successes / c.geocoding_attempts
            inside += low <= value <= high
            total += 1
        assert 0.7 <= inside / total <= 0.92, (metric, inside / total)
    assert forecaster.forecast(metric="volume").calibrated


def test_a_rate_without_attempts_has_no_forecast_and_says_why():
    # Nothing geocodes for the last 30 hours: nothing reaches validation.
    counts = hours(100, geocoding=lambda i: 0.0 if i >= 70 else 0.93)
    f = fed(counts).forecast(metric=VALIDATION)
    assert f.state == NO_DATA
    assert f.reason == "no attempts in the last 24 hours"
    assert f.time_to_cross(threshold=90.0).hours is None


def test_a_gap_is_filled_with_empty_hours_and_hours_must_come_in_order():
    forecaster = make_forecaster()
    forecaster.observe(HourCounts(hour=START, geocoding_attempts=5))
    forecaster.observe(HourCounts(hour=START + 3 * HOUR, geocoding_attempts=5))
    assert forecaster.readiness().hours_seen == 4
    with pytest.raises(ValueError):
        forecaster.observe(HourCounts(hour=START + 2 * HOUR))


def test_unknown_metric_and_horizon_are_refused():
    forecaster = fed(hours(80))
    with pytest.raises(ValueError):
        forecaster.forecast(metric="reports")
    with pytest.raises(ValueError):
        forecaster.forecast(metric="volume", horizon_hours=0)


def test_a_forecast_explains_itself_and_serialises():
    f = fed(hours(10 * 24)).forecast(metric=GEOCODING, horizon_hours=24)
    text = f.explanation
    for part in ("now", "level", "over the last", "Mann-Kendall", "blocks", "seasonality", "in 6 h", "in 24 h"):
        assert part in text
    data = json.loads(json.dumps(f.as_dict()))
    assert data["state"] == "ready" and len(data["path"]) == 24
    assert data["trend"]["window"][1] == f.issued_after.isoformat()
    assert f.time_to_cross(threshold=85.0).as_dict()["threshold"] == 85.0


def test_forecasts_are_cached_until_the_next_hour_closes():
    counts = hours(80)
    forecaster = fed(counts[:-1])
    first = forecaster.forecast(metric="volume")
    assert forecaster.forecast(metric="volume") is first
    forecaster.observe(counts[-1])
    assert forecaster.forecast(metric="volume") is not first
    assert set(forecaster.forecasts()) == {"volume", GEOCODING, VALIDATION}
