"""Recording pipeline runs (scrape / geocode / validate executions).

The per-source scrape state (``ScrapeSource``) follows the runs by trigger (monitoring/triggers.py).
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from monitoring.models import PipelineRun
from monitoring.services.feed import request_status_push_on_commit
from monitoring.services.metrics import MAX_CLOCK_SKEW, SOURCE_PATTERN
from monitoring.telemetry import count_ingested

MAX_ERROR_CHARS = 10_000
FINISHED = (PipelineRun.Status.SUCCEEDED, PipelineRun.Status.FAILED)


class RunInputError(ValueError):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class RunAlreadyFinished(Exception):
    """Finishing a run that is not running."""


def _check_counts_and_error(errors: dict[str, str], *, items_in, items_out, error) -> None:
    for name, value in (("items_in", items_in), ("items_out", items_out)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            errors[name] = "Must be a non-negative integer."
    if error is not None and len(error) > MAX_ERROR_CHARS:
        errors["error"] = f"At most {MAX_ERROR_CHARS} characters."


def _check_time(errors: dict[str, str], name: str, value: datetime | None) -> None:
    if value is not None and value > timezone.now() + MAX_CLOCK_SKEW:
        errors[name] = "Lies more than 5 minutes in the future."


def record_run(
    *,
    source: str,
    stage: str,
    status: str = PipelineRun.Status.RUNNING,
    started_at: datetime | None = None,
    finished_at: datetime | None = None,
    items_in: int = 0,
    items_out: int = 0,
    error: str = "",
    openlineage_run_id: UUID | None = None,
) -> PipelineRun:
    """Record a run that has started, or one that already finished (then ``finished_at`` defaults to now).

    ``openlineage_run_id`` is unique: a second run with the same one raises ``IntegrityError``."""
    errors: dict[str, str] = {}
    if not isinstance(source, str) or not SOURCE_PATTERN.fullmatch(source):
        errors["source"] = "1-100 characters: letters, digits, '_', '.', ':', '-'."
    if stage not in PipelineRun.Stage.values:
        errors["stage"] = f"One of {', '.join(PipelineRun.Stage.values)}."
    if status not in PipelineRun.Status.values:
        errors["status"] = f"One of {', '.join(PipelineRun.Status.values)}."
    _check_counts_and_error(errors, items_in=items_in, items_out=items_out, error=error)
    _check_time(errors, "started_at", started_at)
    _check_time(errors, "finished_at", finished_at)
    now = timezone.now()
    started_at = started_at or now
    if status == PipelineRun.Status.RUNNING:
        if finished_at is not None:
            errors["finished_at"] = "A running run has no finished_at."
    else:
        finished_at = finished_at or max(now, started_at)
        if finished_at < started_at:
            errors["finished_at"] = "Cannot be before started_at."
    if errors:
        raise RunInputError(errors)
    with transaction.atomic():
        run = PipelineRun.objects.create(
            source=source,
            stage=stage,
            status=status,
            started_at=started_at,
            finished_at=finished_at,
            items_in=items_in,
            items_out=items_out,
            error=error,
            openlineage_run_id=openlineage_run_id,
        )
        request_status_push_on_commit(reason="run")
        transaction.on_commit(partial(count_ingested, kind="run", rows=1))
    return run


def finish_run(
    *,
    run_id: int,
    status: str,
    finished_at: datetime | None = None,
    items_in: int | None = None,
    items_out: int | None = None,
    error: str | None = None,
) -> PipelineRun:
    """Close a running run. Raises ``PipelineRun.DoesNotExist`` or ``RunAlreadyFinished``."""
    errors: dict[str, str] = {}
    if status not in FINISHED:
        errors["status"] = "One of succeeded, failed."
    _check_counts_and_error(errors, items_in=items_in, items_out=items_out, error=error)
    _check_time(errors, "finished_at", finished_at)
    if errors:
        raise RunInputError(errors)
    with transaction.atomic():
        run = PipelineRun.objects.select_for_update().get(pk=run_id)
        if run.status != PipelineRun.Status.RUNNING:
            raise RunAlreadyFinished(f"Run {run_id} already finished as {run.status}.")
        finished_at = finished_at or max(timezone.now(), run.started_at)
        if finished_at < run.started_at:
            raise RunInputError({"finished_at": "Cannot be before started_at."})
        run.status = status
        run.finished_at = finished_at
        if items_in is not None:
            run.items_in = items_in
        if items_out is not None:
            run.items_out = items_out
        if error is not None:
            run.error = error
        run.save(update_fields=["status", "finished_at", "items_in", "items_out", "error"])
        request_status_push_on_commit(reason="run")
        return run
