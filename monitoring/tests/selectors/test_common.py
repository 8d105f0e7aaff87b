"""Statuses and formats the selectors share: percent rounding and the worst-wins rule."""

import pytest

from monitoring.selectors import CRITICAL, DEGRADED, HEALTHY, NO_DATA, rate, worst


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [
        (0, 0, 0.0),
        (5, 0, 0.0),
        (873, 1000, 87.3),
        (2, 3, 66.7),
        (1, 3, 33.3),
        (1, 400, 0.3),  # 0.25 rounds half-up, not to even
        (3, 8000, 0.0),  # 0.0375 -> 0.0
        (3, 4000, 0.1),  # 0.075 -> 0.1
        (10, 10, 100.0),
    ],
)
def test_rate_is_percent_rounded_half_up_to_one_decimal(numerator, denominator, expected):
    assert rate(numerator=numerator, denominator=denominator) == expected


def test_worst_ignores_no_data_unless_everything_has_none():
    assert worst(NO_DATA, NO_DATA) == NO_DATA
    assert worst(NO_DATA, HEALTHY) == HEALTHY
    assert worst(HEALTHY, DEGRADED, NO_DATA) == DEGRADED
    assert worst(DEGRADED, CRITICAL, HEALTHY) == CRITICAL
