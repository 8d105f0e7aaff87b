from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Now
from django.utils import timezone


class PipelineRun(models.Model):
    """One execution of a pipeline stage for a source; scrape runs drive scraping health."""

    class Stage(models.TextChoices):
        SCRAPE = "scrape", "Scrape"
        GEOCODE = "geocode", "Geocode"
        VALIDATE = "validate", "Validate"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    source = models.CharField(max_length=100)
    stage = models.CharField(max_length=16, choices=Stage.choices)
    # Database defaults too, for programs that insert runs with SQL and name only what they know.
    started_at = models.DateTimeField(default=timezone.now, db_default=Now())
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING, db_default="running")
    items_in = models.IntegerField(default=0, db_default=0)
    items_out = models.IntegerField(default=0, db_default=0)
    error = models.TextField(blank=True, default="", db_default="")
    # The runId of the OpenLineage run this row follows (POST openlineage): the key its events are applied
    # by, so a repeated or late event finds its run. Null for runs recorded otherwise.
    openlineage_run_id = models.UUIDField(null=True, blank=True, editable=False)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(items_in__gte=0, items_out__gte=0), name="run_items_non_negative"),
            models.CheckConstraint(
                condition=Q(finished_at__isnull=True) | Q(finished_at__gte=F("started_at")),
                name="run_finished_after_started",
            ),
            models.CheckConstraint(
                condition=Q(status="running", finished_at__isnull=True)
                | (Q(status__in=["succeeded", "failed"]) & Q(finished_at__isnull=False)),
                name="run_status_matches_finished_at",
            ),
            models.CheckConstraint(condition=Q(status__in=["running", "succeeded", "failed"]), name="run_status_valid"),
            models.CheckConstraint(condition=Q(stage__in=["scrape", "geocode", "validate"]), name="run_stage_valid"),
            # Partial: only OpenLineage runs are indexed, and on SQLite a partial unique index is created in
            # place, where a unique column would rebuild the table and drop its triggers (monitoring/triggers.py).
            models.UniqueConstraint(
                fields=["openlineage_run_id"],
                condition=Q(openlineage_run_id__isnull=False),
                name="run_openlineage_run_id_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["stage", "source", "started_at"], name="run_stage_source_started"),
            models.Index(fields=["started_at"], name="run_started"),
            # Failure rates count, per source, the runs that finished inside the window, and of those the
            # failed ones: two index-only range scans per source (the failed runs' index is small).
            models.Index(fields=["stage", "source", "finished_at"], name="run_stage_source_finished"),
            models.Index(
                fields=["stage", "source", "finished_at"], condition=Q(status="failed"), name="run_failed_finished"
            ),
            # Running and stuck runs: few rows, found without touching finished history.
            models.Index(fields=["stage", "source"], condition=Q(status="running"), name="run_running"),
        ]

    def __str__(self) -> str:
        return f"{self.source}/{self.stage} {self.status} @ {self.started_at:%Y-%m-%d %H:%M}"
