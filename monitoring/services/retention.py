"""Retention: delete old metric rows in small batches so that no long lock blocks ingest."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from monitoring.models import DataQualityMetric, IdempotencyRecord


def prune_metrics(
    *, older_than: datetime, batch_size: int = 10_000, on_batch: Callable[[int], None] | None = None
) -> int:
    """Delete metrics with ``timestamp < older_than``; returns how many were deleted."""
    deleted_total = 0
    while True:
        ids = list(
            DataQualityMetric.objects.filter(timestamp__lt=older_than)
            .order_by("timestamp")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            return deleted_total
        deleted, _ = DataQualityMetric.objects.filter(pk__in=ids).delete()
        deleted_total += deleted
        if on_batch is not None:
            on_batch(deleted_total)


def prune_idempotency_records(*, older_than: datetime) -> int:
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=older_than).delete()
    return deleted
