"""Retention: delete old rows in small batches so that no long lock blocks ingest.

Raw metrics and runs are kept for at least the longest window the status reads (720 h): every
status window then reads only rows retention never touches, so it equals a query of the raw tables.
The hourly rollups keep the pruned hours (trends and the anomaly series read them).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from monitoring.models import DataQualityMetric, IdempotencyRecord, PipelineRun, PruneMarker
from monitoring.selectors import MAX_WINDOW_HOURS

MIN_RETENTION = timedelta(hours=MAX_WINDOW_HOURS)


class RetentionTooShort(ValueError):
    """A cutoff inside the longest status window: the status would lose rows it counts."""


def _check_cutoff(older_than: datetime) -> None:
    if older_than > timezone.now() - MIN_RETENTION:
        raise RetentionTooShort(f"Raw rows are kept for at least {MAX_WINDOW_HOURS} hours (the longest status window).")


def _delete_in_batches(
    queryset: QuerySet,
    *,
    order_by: str,
    batch_size: int,
    on_batch: Callable[[int], None] | None,
    keep_rollups: bool = False,
) -> int:
    deleted_total = 0
    while True:
        ids = list(queryset.order_by(order_by).values_list("pk", flat=True)[:batch_size])
        if not ids:
            return deleted_total
        with transaction.atomic():
            # The marker tells the rollup triggers that this delete is retention: the hours stay summed.
            marker = PruneMarker.objects.create() if keep_rollups else None
            deleted, _ = queryset.model.objects.filter(pk__in=ids).delete()
            if marker is not None:
                marker.delete()
        deleted_total += deleted
        if on_batch is not None:
            on_batch(deleted_total)


def prune_metrics(
    *, older_than: datetime, batch_size: int = 10_000, on_batch: Callable[[int], None] | None = None
) -> int:
    """Delete metrics with ``timestamp < older_than``, keeping their hourly rollups; returns how many were
    deleted. Raises ``RetentionTooShort`` for a cutoff within the longest status window."""
    _check_cutoff(older_than)
    return _delete_in_batches(
        DataQualityMetric.objects.filter(timestamp__lt=older_than),
        order_by="timestamp",
        batch_size=batch_size,
        on_batch=on_batch,
        keep_rollups=True,
    )


def prune_runs(*, older_than: datetime, batch_size: int = 10_000, on_batch: Callable[[int], None] | None = None) -> int:
    """Delete finished runs that finished before ``older_than`` (running ones stay: they may be stuck).
    Raises ``RetentionTooShort`` for a cutoff within the longest status window."""
    _check_cutoff(older_than)
    return _delete_in_batches(
        PipelineRun.objects.filter(finished_at__lt=older_than),
        order_by="finished_at",
        batch_size=batch_size,
        on_batch=on_batch,
    )


def prune_idempotency_records(*, older_than: datetime) -> int:
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=older_than).delete()
    return deleted
