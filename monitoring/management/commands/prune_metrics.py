from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from monitoring.services.retention import (
    MIN_RETENTION,
    prune_idempotency_records,
    prune_metrics,
    prune_runs,
)


class Command(BaseCommand):
    help = (
        "Delete metrics and finished runs older than --days (in batches; the hourly rollups stay), "
        "and expired idempotency keys."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--days", type=int, default=90, help="Days of raw metrics and runs to keep (default 90, at least 30)."
        )
        parser.add_argument("--batch-size", type=int, default=10_000)

    def handle(self, *args, days: int, batch_size: int, **options):
        min_days = MIN_RETENTION.days
        if not min_days <= days <= 36_500:
            raise CommandError(f"--days must be between {min_days} (the longest status window) and 36500.")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        now = timezone.now()
        cutoff = now - timedelta(days=days)
        self.stdout.write(f"Deleting metrics older than {cutoff.isoformat()} ...")
        deleted = prune_metrics(
            older_than=cutoff,
            batch_size=batch_size,
            on_batch=lambda total: self.stdout.write(f"  {total} metric(s) deleted so far"),
        )
        self.stdout.write(f"Deleting runs that finished before {cutoff.isoformat()} ...")
        runs = prune_runs(
            older_than=cutoff,
            batch_size=batch_size,
            on_batch=lambda total: self.stdout.write(f"  {total} run(s) deleted so far"),
        )
        keys = prune_idempotency_records(older_than=now - timedelta(hours=settings.MONITORING_IDEMPOTENCY_TTL_HOURS))
        self.stdout.write(
            self.style.SUCCESS(
                f"Deleted {deleted} metric(s), {runs} finished run(s) and {keys} expired idempotency key(s)."
            )
        )
