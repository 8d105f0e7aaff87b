"""Statuses, rates and timestamps as every status document writes them."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

HEALTHY = "healthy"
DEGRADED = "degraded"
CRITICAL = "critical"
NO_DATA = "no_data"
_SEVERITY = {HEALTHY: 0, DEGRADED: 1, CRITICAL: 2}

MIN_WINDOW_HOURS = 1
MAX_WINDOW_HOURS = 720


def rate(*, numerator: int, denominator: int) -> float:
    """Percentage rounded half-up to one decimal; 0.0 when there is nothing to divide by."""
    if denominator <= 0:
        return 0.0
    value = Decimal(numerator) * 100 / Decimal(denominator)
    return float(value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def worst(*statuses: str) -> str:
    """The most severe status; ``no_data`` only when no component has data."""
    known = [s for s in statuses if s != NO_DATA]
    return max(known, key=_SEVERITY.__getitem__) if known else NO_DATA


def isoformat(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
