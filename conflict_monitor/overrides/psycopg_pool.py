"""Override of psycopg-pool: a lost database is retried about once a second instead of backing off
exponentially.

psycopg's pool doubles the wait between connection attempts (1, 2, 4, 8, 16 s...), so after a 20 s
outage the next attempt could come 11 s after the database was back, and every request meanwhile
answered 503 (tests/reliability/test_database_outage.py). An attempt against a server that is down is
refused at once: retrying every second costs nothing.

The monitoring app installs it in every process (``MonitoringConfig.ready``), after checking it.
"""

from __future__ import annotations

from conflict_monitor.overrides import ATTRIBUTE, Member

RELIES_ON = [
    Member(
        "psycopg_pool.base:AttemptWithBackoff",
        "DELAY_BACKOFF",
        ATTRIBUTE,
        read_by="update_delay",
        why="set to 1.0: the factor between one connection attempt's wait and the next",
    ),
]

CHECKED_AGAINST = {"psycopg-pool": "3.3.3"}

MEASURED_GAIN = {
    "steady reconnects (`install`)": (
        "after a 20 s database outage, status calls answered 200 again 0.05–0.34 s after the database returned; "
        "before, still 503 five seconds later (173c46c; docs/reliability.md, scenario 2)"
    ),
}


def install() -> None:
    """Retry a lost database about once a second (the first wait stays upstream's, 1 s with jitter)."""
    from psycopg_pool.base import AttemptWithBackoff

    AttemptWithBackoff.DELAY_BACKOFF = 1.0
