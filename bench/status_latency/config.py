"""The status bench's fixed settings, and the environment of every process that computes the status."""

from __future__ import annotations

from bench.lib.database import ALERTS_TABLE, METRICS_TABLE, ROLLUPS_TABLE, RUNS_TABLE, SOURCES_TABLE
from bench.lib.processes import django_env

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/conflict_monitor_bench"
DEFAULT_ROWS = 1_000_000
FILLED_TABLES = (METRICS_TABLE, RUNS_TABLE, ROLLUPS_TABLE, SOURCES_TABLE, ALERTS_TABLE)

WARMUP_CALLS = 10
HEALTH_PATH = "/api/v1/monitoring/health"
STATUS_PATH = "/api/v1/monitoring/pipeline-status"
# Process warm-up before the first status call: opens the database pool and runs the ORM and DRF
# paths without computing anomalies, so the first status call is cold in the anomaly cache only.
PROCESS_WARMUP_PATH = "/api/v1/monitoring/runs?limit=5"
SCENARIOS = (
    ("health", HEALTH_PATH),
    ("status_24h", STATUS_PATH),
    ("status_720h", f"{STATUS_PATH}?window_hours=720"),
)
LONG_SCENARIO = "status_720h"
EXPLAIN_WINDOWS = (24, 720)
# The selector caches the anomaly findings per UTC hour for MONITORING_ANOMALY_CACHE_SECONDS (locmem
# without REDIS_URL, so per daphne process). The server gets this value explicitly.
ANOMALY_CACHE_SECONDS = 60
# Margin around the cache's expiry and the hour boundary.
CACHE_SAFETY = 0.25


def status_env(url: str) -> dict[str, str]:
    """The environment of every process that computes the status: pins the anomaly cache lifetime."""
    return {**django_env(url), "MONITORING_ANOMALY_CACHE_SECONDS": str(ANOMALY_CACHE_SECONDS)}
