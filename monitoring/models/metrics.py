from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Now
from django.utils import timezone

from monitoring.models.runs import PipelineRun

COUNT_FIELDS = ("geocoding_attempts", "geocoding_successes", "validation_attempts", "validation_passes")


def run_link_errors(*, run_id: int, source: str, stage: str | None, run: tuple[str, str] | None) -> dict[str, str]:
    """Why a metric of ``source`` (and ``stage``, if given) cannot name the run ``run_id`` whose (source,
    stage) is ``run`` (None: no such run); empty when it can. The ingest service and the admin's form
    check links with this one rule."""
    if run is None:
        return {"run_id": f"No run {run_id}."}
    run_source, run_stage = run
    if run_source != source:
        return {"run_id": f"Run {run_id} is a run of {run_source}, not of {source}."}
    if stage is not None and stage != run_stage:
        return {"stage": f"Run {run_id} is a {run_stage} run: give stage {run_stage}, or none."}
    return {}


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
    # The run that reported the batch, and its stage. The stage is stored on the metric, not read through
    # the run: the hourly rollups are kept per stage by the triggers, and a stage must outlive the run
    # (retention prunes runs; deleting a run through Django only unlinks its metrics). Nullable, so that
    # adding them rewrote no PostgreSQL table; a metric without a stage is "unstaged".
    # No database constraint on the key: PostgreSQL would queue a foreign-key check for every inserted
    # metric, linked or not (about 0.5 µs a row at commit), refuse a TRUNCATE of the metrics after an
    # INSERT in the same transaction, and refuse another program's DELETE or TRUNCATE of runs. The ingest
    # service checks the run and holds it until its commit; a run deleted with SQL leaves its metrics'
    # run_id pointing nowhere, which no figure reads (the stage is the metric's own).
    run = models.ForeignKey(
        PipelineRun,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="metrics",
        db_constraint=False,
        db_index=False,  # the partial index below
        help_text="The pipeline run that reported this batch.",
    )
    stage = models.CharField(  # noqa: DJ001 (NULL, not "": what another program's INSERT without it stores)
        max_length=16,
        choices=PipelineRun.Stage.choices,
        null=True,
        blank=True,
        help_text="Pipeline stage that reported this batch; empty: unstaged.",
    )

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
            models.CheckConstraint(
                condition=Q(stage__isnull=True) | Q(stage__in=PipelineRun.Stage.values), name="dqm_stage_valid"
            ),
        ]
        indexes = [
            # The status query's per-source and per-stage window sums read only this index (PostgreSQL
            # index-only scan).
            models.Index(fields=["timestamp"], include=[*COUNT_FIELDS, "source", "stage"], name="dqm_timestamp_cover"),
            # Per-source breakdown and per-source history.
            models.Index(
                fields=["source", "timestamp"],
                include=[*COUNT_FIELDS, "stage"],
                name="dqm_source_timestamp_cover",
            ),
            # A run's metrics, unlinked when it is deleted. Partial: unlinked metrics (every row from before
            # migration 0009, and other programs' rows) cost no index entry on insert, and the index was
            # built empty.
            models.Index(fields=["run"], condition=Q(run__isnull=False), name="dqm_run"),
        ]

    def __str__(self) -> str:
        return f"{self.source} @ {self.timestamp:%Y-%m-%d %H:%M}"

    def clean(self) -> None:
        """The link rule of the ingest service, for the admin's form; a linked metric without a stage
        takes its run's."""
        if self.run_id is None:
            return
        run = PipelineRun.objects.filter(pk=self.run_id).values_list("source", "stage").first()
        errors = run_link_errors(run_id=self.run_id, source=self.source, stage=self.stage or None, run=run)
        if errors:
            raise ValidationError({"run" if name == "run_id" else name: message for name, message in errors.items()})
        self.stage = self.stage or run[1]
