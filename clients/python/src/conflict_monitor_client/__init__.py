"""Report a data pipeline's runs and data-quality metrics to Conflict Monitor.

    from conflict_monitor_client import Monitor

    with Monitor("http://127.0.0.1:8000", token) as monitor:
        with monitor.run("acled", "geocode") as run:
            run.report(geocoding_attempts=120, geocoding_successes=108)

``AsyncMonitor`` is the same for asyncio, and follows the live feed with a read key::

    async with AsyncMonitor("http://127.0.0.1:8000", read_key) as monitor:
        async for update in monitor.follow():
            print(update.seq, update.status["overall_status"])

``cm-report`` reports from a shell. See README.md.
"""

from conflict_monitor_client.aio import AsyncMonitor, AsyncRun
from conflict_monitor_client.client import Monitor, Run
from conflict_monitor_client.errors import (
    APIError,
    AuthenticationFailed,
    Conflict,
    ConflictMonitorError,
    ConnectionFailed,
    FeedClosed,
    IdempotencyKeyReused,
    InvalidReport,
    InvalidRequest,
    MetricsNotSent,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    RunAlreadyFinished,
    ServerError,
)
from conflict_monitor_client.feed import FeedPosition, StatusStale, StatusUpdate
from conflict_monitor_client.follow import Feed
from conflict_monitor_client.reports import Metric, Sent, make_metric
from conflict_monitor_client.retry import RetryPolicy
from conflict_monitor_client.runs import RunRecord, Stage
from conflict_monitor_client.transport import VERSION as __version__

__all__ = [
    "APIError",
    "AsyncMonitor",
    "AsyncRun",
    "AuthenticationFailed",
    "Conflict",
    "ConflictMonitorError",
    "ConnectionFailed",
    "Feed",
    "FeedClosed",
    "FeedPosition",
    "IdempotencyKeyReused",
    "InvalidReport",
    "InvalidRequest",
    "Metric",
    "MetricsNotSent",
    "Monitor",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "RateLimited",
    "RetryPolicy",
    "Run",
    "RunAlreadyFinished",
    "RunRecord",
    "Sent",
    "ServerError",
    "Stage",
    "StatusStale",
    "StatusUpdate",
    "__version__",
    "make_metric",
]
