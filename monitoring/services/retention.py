"""Retention: delete old rows in small batches so that no long lock blocks ingest."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.db.models import QuerySet

from monitoring.models import DataQualityMetric, IdempotencyRecord, PipelineRun


def _delete_in_batches(
    queryset: QuerySet, *, order_by: str, batch_size: int, on_batch: Callable[[int], None] | None
) -> int:
    deleted_total = 0
    while True:
        ids = list(queryset.order_by(order_by).values_list("pk", flat=True)[:batch_size])
        if not ids:
            return deleted_total
        deleted, _ = queryset.model.objects.filter(pk__in=ids).delete()
        deleted_total += deleted
        if on_batch is not None:
            on_batch(deleted_total)


def prune_metrics(
    *, older_than: datetime, batch_size: int = 10_000, on_batch: Callable[[int], None] | None = None
) -> int:
    """Delete metrics with ``timestamp < older_than``; returns how many were deleted."""
    return _delete_in_batches(
        DataQualityMetric.objects.filter(timestamp__lt=older_than),
        order_by="timestamp",
        batch_size=batch_size,
        on_batch=on_batch,
    )


def prune_runs(*, older_than: datetime, batch_size: int = 10_000, on_batch: Callable[[int], None] | None = None) -> int:
    """Delete finished runs that finished before ``older_than`` (running ones stay: they may be stuck)."""
    return _delete_in_batches(
        PipelineRun.objects.filter(finished_at__lt=older_than),
        order_by="finished_at",
        batch_size=batch_size,
        on_batch=on_batch,
    )


def prune_idempotency_records(*, older_than: datetime) -> int:
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=older_than).delete()
    return deleted
