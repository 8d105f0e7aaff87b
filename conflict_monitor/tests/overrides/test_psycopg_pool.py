"""psycopg-pool's reconnect attempts, once the override is installed: about a second apart however
long the database stays away, not doubling."""

from __future__ import annotations

from psycopg_pool.base import AttemptWithBackoff

from conflict_monitor.overrides import psycopg_pool as pool_overrides


def test_a_lost_database_is_retried_about_once_a_second(monkeypatch):
    monkeypatch.setattr(AttemptWithBackoff, "DELAY_BACKOFF", 2.0)  # upstream's, until installed
    pool_overrides.install()
    attempt = AttemptWithBackoff(timeout=600)
    delays = []
    now = 0.0
    for _ in range(10):
        attempt.update_delay(now)
        delays.append(attempt.delay)
        now += attempt.delay
    # The first wait is upstream's (1 s with 10 % jitter); the next ones stay there.
    assert all(0.9 <= delay <= 1.1 for delay in delays), delays
