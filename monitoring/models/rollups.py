from django.db import models
from django.db.models import F, Q

from monitoring.models.metrics import COUNT_FIELDS


class HourlyRollup(models.Model):
    """Per-source, per-stage, per-hour sums of metrics, kept by database triggers for every writer
    (migrations 0004 and 0009); they outlive the raw rows that retention prunes."""

    source = models.CharField(max_length=100)
    # Not null: the unique key's NULLs would be distinct (one rollup per unstaged report) on both backends.
    stage = models.CharField(max_length=16, blank=True, default="", help_text="The metrics' stage; empty: unstaged.")
    hour = models.DateTimeField(help_text="Start of the UTC hour.")
    geocoding_attempts = models.BigIntegerField(default=0)
    geocoding_successes = models.BigIntegerField(default=0)
    validation_attempts = models.BigIntegerField(default=0)
    validation_passes = models.BigIntegerField(default=0)
    reports = models.IntegerField(default=0)
    last_report_at = models.DateTimeField(null=True, help_text="Newest metric timestamp in the hour.")

    class Meta:
        constraints = [
            # Source and hour first: a source's hours are one range scan of it, whatever the stages.
            models.UniqueConstraint(fields=["source", "hour", "stage"], name="rollup_source_hour_stage_unique"),
            *(
                models.CheckConstraint(condition=Q(**{f"{f}__gte": 0}), name=f"rollup_{f}_non_negative")
                for f in COUNT_FIELDS
            ),
            models.CheckConstraint(
                condition=Q(
                    geocoding_successes__lte=F("geocoding_attempts"), validation_passes__lte=F("validation_attempts")
                ),
                name="rollup_parts_lte_attempts",
            ),
        ]
        indexes = [
            # The status window's whole hours read only this index (PostgreSQL index-only scan), so a
            # 720 h window costs one pass over ~14,400 index entries and no heap pages.
            models.Index(
                fields=["hour"],
                include=["source", "stage", *COUNT_FIELDS, "reports", "last_report_at"],
                name="rollup_hour_cover",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source}/{self.stage or 'unstaged'} @ {self.hour:%Y-%m-%d %H:00}"


class PruneMarker(models.Model):
    """A row exists only inside a retention transaction: while it does, the triggers that keep the rollups
    leave them as they are when raw metrics are deleted, so the hourly history outlives the raw rows.
    Other transactions never see the row (it is deleted before its transaction commits)."""

    class Meta:
        verbose_name = "prune marker"

    def __str__(self) -> str:
        return f"prune marker {self.pk}"
