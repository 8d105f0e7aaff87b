"""Writing data-quality metrics, each optionally linked to the pipeline run that reported it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from functools import partial

from django.db import connection, transaction
from django.utils import timezone

from monitoring.models import DataQualityMetric, PipelineRun
from monitoring.models.metrics import COUNT_FIELDS, run_link_errors
from monitoring.services.feed import request_status_push_on_commit
from monitoring.telemetry import count_ingested

SOURCE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
METRIC_TYPE_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,49}$")
# Pipeline hosts' clocks drift; anything further ahead than this is a bug, not drift.
MAX_CLOCK_SKEW = timedelta(minutes=5)
MAX_COUNT = 2**31 - 1
# The largest id a run can have (a 64-bit key): a larger run_id is refused as invalid, not queried.
MAX_RUN_ID = 2**63 - 1
STAGES = tuple(PipelineRun.Stage.values)
PART_OF = (("geocoding_successes", "geocoding_attempts"), ("validation_passes", "validation_attempts"))


@dataclass(frozen=True, kw_only=True)
class MetricInput:
    """A validated metric report. Construction raises ``ValueError`` naming the bad field."""

    source: str
    geocoding_attempts: int = 0
    geocoding_successes: int = 0
    validation_attempts: int = 0
    validation_passes: int = 0
    metric_type: str = "batch"
    timestamp: datetime | None = field(default=None)
    # The run that reported the batch (it must exist and be of the same source) and the stage; without a
    # stage, a linked metric takes its run's. Checked against the runs table by ``record_metrics``.
    run_id: int | None = None
    stage: str | None = None

    def __post_init__(self) -> None:
        errors: dict[str, str] = {}
        if not isinstance(self.source, str) or not SOURCE_PATTERN.fullmatch(self.source):
            errors["source"] = (
                "1-100 characters: letters, digits, '_', '.', ':', '-' (starting with a letter or digit)."
            )
        if not isinstance(self.metric_type, str) or not METRIC_TYPE_PATTERN.fullmatch(self.metric_type):
            errors["metric_type"] = "1-50 characters: lower-case letters, digits and '_', starting with a letter."
        for name in COUNT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
                errors[name] = f"Must be an integer between 0 and {MAX_COUNT}."
        for part, whole in PART_OF:
            if part not in errors and whole not in errors and getattr(self, part) > getattr(self, whole):
                errors[part] = f"Cannot exceed {whole}."
        if self.timestamp is not None:
            if not isinstance(self.timestamp, datetime) or timezone.is_naive(self.timestamp):
                errors["timestamp"] = "Must be a timezone-aware date-time."
            elif self.timestamp > timezone.now() + MAX_CLOCK_SKEW:
                errors["timestamp"] = "Lies more than 5 minutes in the future."
        if self.run_id is not None and (
            isinstance(self.run_id, bool) or not isinstance(self.run_id, int) or not 1 <= self.run_id <= MAX_RUN_ID
        ):
            errors["run_id"] = f"Must be a run's id: an integer between 1 and {MAX_RUN_ID}."
        if self.stage is not None and self.stage not in STAGES:
            errors["stage"] = f"One of {', '.join(STAGES)}."
        if errors:
            raise MetricInputError(errors)

    def as_dict(self) -> dict[str, object]:
        """Field name -> value, like ``dataclasses.asdict`` without its deep copy (every value is
        immutable), which would cost ~15 % of a 5000-metric request. ``run_id`` and ``stage`` only when
        given: a request without them keeps the idempotency fingerprint it had before they existed."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in _LINK_FIELDS:
            if values[name] is None:
                del values[name]
        return values


_LINK_FIELDS = ("run_id", "stage")


class MetricInputError(ValueError):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class MetricLinkError(ValueError):
    """Metrics whose ``run_id`` or ``stage`` disagrees with the runs table: ``errors`` maps each one's
    position in the call to field -> message."""

    def __init__(self, errors: dict[int, dict[str, str]]) -> None:
        super().__init__("; ".join(f"{i}: {e}" for i, e in errors.items()))
        self.errors = errors


def _linked_stages(metrics: Sequence[MetricInput]) -> list[str | None]:
    """Each metric's stage: its own, else its run's. Raises ``MetricLinkError`` for a run that does not
    exist, is of another source, or is of another stage than the metric says.

    On PostgreSQL the runs are locked ``FOR KEY SHARE`` until the transaction ends (the lock a foreign-key
    check takes; the key has no database constraint, see the model): a run cannot be deleted between this
    check and the commit, while finishing it or linking other metrics to it goes on."""
    ids = sorted({m.run_id for m in metrics if m.run_id is not None})
    runs: dict[int, tuple[str, str]] = {}
    if ids:
        lock = " FOR KEY SHARE" if connection.vendor == "postgresql" else ""
        table = connection.ops.quote_name(PipelineRun._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, source, stage FROM {table} WHERE id IN ({', '.join(['%s'] * len(ids))}){lock}",  # noqa: S608
                ids,
            )
            runs = {pk: (source, stage) for pk, source, stage in cursor.fetchall()}
    stages: list[str | None] = []
    errors: dict[int, dict[str, str]] = {}
    for i, metric in enumerate(metrics):
        if metric.run_id is None:
            stages.append(metric.stage)
            continue
        run = runs.get(metric.run_id)
        if problems := run_link_errors(run_id=metric.run_id, source=metric.source, stage=metric.stage, run=run):
            errors[i] = problems
        stages.append(metric.stage if metric.stage is not None else run[1] if run else None)
    if errors:
        raise MetricLinkError(errors)
    return stages


def record_metrics(*, metrics: Sequence[MetricInput]) -> list[DataQualityMetric]:
    """Store reports all-or-nothing; one INSERT per thousand rows (per 5000 on PostgreSQL).

    Raises ``MetricLinkError`` (nothing stored) when a metric's run does not exist, is of another source,
    or is of another stage than the metric gives."""
    now = timezone.now()
    with transaction.atomic():
        stages = _linked_stages(metrics)
        rows = [
            DataQualityMetric(
                timestamp=m.timestamp or now,
                source=m.source,
                metric_type=m.metric_type,
                geocoding_attempts=m.geocoding_attempts,
                geocoding_successes=m.geocoding_successes,
                validation_attempts=m.validation_attempts,
                validation_passes=m.validation_passes,
                ingested_at=now,
                run_id=m.run_id,
                stage=stage,
            )
            for m, stage in zip(metrics, stages, strict=True)
        ]
        # The hourly rollups follow in the same transaction, by trigger (monitoring/triggers.py).
        created = _insert(rows)
        request_status_push_on_commit(reason="metrics")
        transaction.on_commit(partial(count_ingested, kind="metric", rows=len(rows)))
    return created


_INSERT_FIELDS = (
    "timestamp",
    "source",
    "metric_type",
    *COUNT_FIELDS,
    "ingested_at",
    "run",
    "stage",
)
_UNNEST_CHUNK = 5000


def _insert(rows: list[DataQualityMetric]) -> list[DataQualityMetric]:
    """``bulk_create``; on PostgreSQL the same ``INSERT ... SELECT FROM unnest(...)`` statement that
    ``bulk_create`` builds there, without the ORM's per-value preparation, which was a third of the
    server's CPU for a 5000-metric request. The values already have the columns' Python types (they come
    from validated ``MetricInput``s), which is all that preparation would ensure."""
    if connection.vendor != "postgresql":
        return DataQualityMetric.objects.bulk_create(rows, batch_size=1000)
    opts = DataQualityMetric._meta
    # Unlinked batches (most of them) leave the link columns to their NULL default: two fewer arrays.
    linked = any(row.run_id is not None or row.stage is not None for row in rows)
    columns = [opts.get_field(name) for name in (_INSERT_FIELDS if linked else _INSERT_FIELDS[:-2])]
    names = ", ".join(connection.ops.quote_name(column.column) for column in columns)
    arrays = ", ".join(f"%s::{column.db_type(connection)}[]" for column in columns)
    statement = (
        f"INSERT INTO {connection.ops.quote_name(opts.db_table)} ({names}) "  # noqa: S608
        f"SELECT * FROM unnest({arrays}) RETURNING {connection.ops.quote_name(opts.pk.column)}"
    )
    with connection.cursor() as cursor:
        for start in range(0, len(rows), _UNNEST_CHUNK):
            chunk = rows[start : start + _UNNEST_CHUNK]
            cursor.execute(statement, [[getattr(row, column.attname) for row in chunk] for column in columns])
            # PostgreSQL returns the rows of INSERT ... SELECT FROM unnest in input order (bulk_create
            # relies on the same), so the ids pair up with the rows.
            for row, (pk,) in zip(chunk, cursor.fetchall(), strict=True):
                row.pk = pk
                row._state.adding = False
                row._state.db = connection.alias
    return rows
