"""Per-socket limits on a clock: the token bucket's burst and refill, the strike counter's window."""

import pytest

from monitoring.feed import ratelimit
from monitoring.feed.ratelimit import StrikeCounter, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(ratelimit.time, "monotonic", fake)
    return fake


def test_a_bucket_allows_its_burst_at_once_then_refuses(clock):
    bucket = TokenBucket(rate=2, burst=3)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_a_bucket_refills_at_its_rate_and_never_beyond_its_burst(clock):
    bucket = TokenBucket(rate=2, burst=3)
    for _ in range(3):
        bucket.take()
    clock.now += 0.5  # one token at 2/s
    assert [bucket.take(), bucket.take()] == [True, False]
    clock.now += 3600  # a long quiet spell saves up the burst only
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_strikes_exceed_the_limit_only_within_the_window(clock):
    strikes = StrikeCounter(limit=2, window=10.0)
    assert [strikes.add(), strikes.add()] == [False, False]
    assert strikes.add() is True
    clock.now += 10.5  # every earlier strike has left the window
    assert strikes.add() is False
    assert len(strikes.times) == 1


def test_a_strike_exactly_window_seconds_old_still_counts(clock):
    strikes = StrikeCounter(limit=1, window=10.0)
    strikes.add()
    clock.now += 10.0
    assert strikes.add() is True
