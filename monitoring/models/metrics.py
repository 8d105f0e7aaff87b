from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Now
from django.utils import timezone

COUNT_FIELDS = ("geocoding_attempts", "geocoding_successes", "validation_attempts", "validation_passes")


class DataQualityMetric(models.Model):
    """One report from the pipeline: how many records it tried to geocode / validate, and how many passed."""

    # Database defaults as well: another program's INSERT may name only the columns it knows (the original
    # design's writer names the four counts, metric_type and source), and a row stays complete.
    timestamp = models.DateTimeField(
        default=timezone.now, db_default=Now(), help_text="When the pipeline measured this batch (UTC)."
    )
    source = models.CharField(max_length=100, help_text="Pipeline source (scraper) the batch came from.")
    metric_type = models.CharField(
        max_length=50, default="batch", db_default="batch", help_text="Kind of report, e.g. batch or hourly."
    )
    geocoding_attempts = models.IntegerField(default=0, db_default=0)
    geocoding_successes = models.IntegerField(default=0, db_default=0)
    validation_attempts = models.IntegerField(default=0, db_default=0)
    validation_passes = models.IntegerField(default=0, db_default=0)
    ingested_at = models.DateTimeField(default=timezone.now, db_default=Now(), editable=False)

    class Meta:
        verbose_name = "data quality metric"
        constraints = [
            *(
                models.CheckConstraint(condition=Q(**{f"{f}__gte": 0}), name=f"dqm_{f}_non_negative")
                for f in COUNT_FIELDS
            ),
            models.CheckConstraint(
                condition=Q(geocoding_successes__lte=F("geocoding_attempts")),
                name="dqm_geocoding_successes_lte_attempts",
            ),
            models.CheckConstraint(
                condition=Q(validation_passes__lte=F("validation_attempts")),
                name="dqm_validation_passes_lte_attempts",
            ),
        ]
        indexes = [
            # The status query's per-source window sums read only this index (PostgreSQL index-only scan).
            models.Index(fields=["timestamp"], include=[*COUNT_FIELDS, "source"], name="dqm_timestamp_cover"),
            # Per-source breakdown and per-source history.
            models.Index(fields=["source", "timestamp"], include=list(COUNT_FIELDS), name="dqm_source_timestamp_cover"),
        ]

    def __str__(self) -> str:
        return f"{self.source} @ {self.timestamp:%Y-%m-%d %H:%M}"
