"""Bands from past errors: rolling quantiles, interpolation between horizons, the stand-in before calibration."""

import random

import pytest

from monitoring.forecast.calibration import ErrorBook, RollingQuantiles


def test_rolling_quantiles_forget_the_oldest_values():
    q = RollingQuantiles(size=5)
    for v in [100, 1, 2, 3, 4, 5]:
        q.add(v)
    assert len(q) == 5
    assert q.sorted == [1, 2, 3, 4, 5]
    assert q.quantile(0.5) == 3
    assert q.quantile(0.0) == 1 and q.quantile(1.0) == 5
    assert q.quantile(0.25) == pytest.approx(2.0)


def test_rolling_quantiles_match_a_sort_of_the_window():
    rng = random.Random(7)
    q = RollingQuantiles(size=50)
    values = [rng.gauss(0, 1) for _ in range(300)]
    for v in values:
        q.add(v)
    window = sorted(values[-50:])
    assert q.sorted == window
    assert q.quantile(0.1) == pytest.approx(window[4] + 0.9 * (window[5] - window[4]))


def test_empty_quantiles_raise():
    with pytest.raises(ValueError):
        RollingQuantiles(size=3).quantile(0.5)


def _book(**kw):
    return ErrorBook(horizons=(1, 6, 24), size=400, coverage=0.8, min_errors=kw.get("min_errors", 24))


def test_a_book_without_errors_stands_in_with_a_widening_normal_band():
    book = _book()
    low1, high1 = book.band(1)
    low24, high24 = book.band(24)
    assert low1 == pytest.approx(-high1) and high1 > 1.2
    assert high24 > high1
    assert not book.calibrated(6)


def test_the_band_is_the_empirical_quantiles_of_past_errors_even_when_skewed():
    book = _book()
    rng = random.Random(1)
    for _ in range(400):
        book.add(horizon=6, error=rng.expovariate(1.0) - 1.0)  # skewed: a long upper tail
    low, high = book.band(6)
    assert book.calibrated(6)
    assert low == pytest.approx(-0.9, abs=0.08)  # exp quantile 0.1 = 0.105
    assert high == pytest.approx(1.3, abs=0.25)  # exp quantile 0.9 = 2.30
    assert high > -low


def test_bands_between_horizons_are_interpolated():
    book = _book()
    for _ in range(30):
        for e in (-1.0, 1.0):
            book.add(horizon=6, error=e)
            book.add(horizon=24, error=3 * e)
    low6, high6 = book.band(6)
    low24, high24 = book.band(24)
    low15, high15 = book.band(15)
    assert high15 == pytest.approx((high6 + high24) / 2)
    assert low15 == pytest.approx((low6 + low24) / 2)
    assert book.bands(24)[15] == pytest.approx((low15, high15))
    assert book.band(48) == book.band(24)  # beyond the longest horizon: its band
