"""Applying OpenLineage run events to pipeline runs (docs/openlineage.md).

A run event's ``runId`` names one ``PipelineRun`` (``openlineage_run_id``); its job names the run's
source and stage (``monitoring.openlineage.mapping``) when the run is first seen. The event's type moves
the run: START opens it as running (so does a RUNNING whose START was missed); COMPLETE finishes it as
succeeded; FAIL and ABORT as failed, with the ``errorMessage`` facet's message; OTHER moves nothing. A
transition that already happened is a no-op, whatever order the events arrive in: a COMPLETE before its
START records a finished run, and the late START only moves the run's start earlier. The volume of a
START, RUNNING or end event becomes the run's ``items_in`` / ``items_out``; the
``conflictMonitor_pipelineCounts`` facet of the event that ends the run, one data-quality metric of its
source, linked to the run and of its stage.

One call's events apply in one transaction: all or none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any
from uuid import UUID

from django.db import IntegrityError, transaction

from monitoring.models import PipelineRun
from monitoring.openlineage.events import ABORT, COMPLETE, FAIL, OTHER, RUNNING, RunEvent, StaticEvent
from monitoring.openlineage.mapping import Target, job_map, resolve_job
from monitoring.openlineage.validation import PIPELINE_COUNTS
from monitoring.services.feed import request_status_push_on_commit
from monitoring.services.metrics import MetricInput, record_metrics
from monitoring.services.runs import MAX_ERROR_CHARS, finish_run, record_run

APPLIED, DUPLICATE, IGNORED = "applied", "duplicate", "ignored"
OUTCOMES = (APPLIED, DUPLICATE, IGNORED)
END_STATUS = {
    COMPLETE: PipelineRun.Status.SUCCEEDED,
    FAIL: PipelineRun.Status.FAILED,
    ABORT: PipelineRun.Status.FAILED,
}
# The metric_type of the metrics recorded from the counts facet: where they came from.
METRIC_TYPE = "openlineage"
NO_MESSAGE = {
    FAIL: "OpenLineage FAIL event without an errorMessage facet.",
    ABORT: "Aborted (OpenLineage ABORT event).",
}


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What one event did: ``applied`` (it moved or created a run), ``duplicate`` (its transition had
    already happened), ``ignored`` (it is about no run the monitor follows); ``detail`` says which."""

    outcome: str
    detail: str
    run_id: UUID | None = None
    event_type: str | None = None
    pipeline_run: int | None = None
    source: str | None = None
    stage: str | None = None


def apply_events(*, events: Sequence[RunEvent | StaticEvent]) -> list[Outcome]:
    """Apply ``events`` in order, in one transaction; one outcome per event, in the same order.

    Raises ``ImproperlyConfigured`` when ``MONITORING_OPENLINEAGE_JOB_MAP`` is wrong."""
    explicit = job_map()
    with transaction.atomic():
        return [_apply(event, explicit=explicit) for event in events]


def _apply(event: RunEvent | StaticEvent, *, explicit: dict[str, Target]) -> Outcome:
    if isinstance(event, StaticEvent):
        return Outcome(outcome=IGNORED, detail=f"A {event.kind} is about no run.")
    ids = {"run_id": event.run_id, "event_type": event.event_type}
    if event.event_type in (None, OTHER):
        return Outcome(
            outcome=IGNORED, detail=f"{event.event_type or 'An event without eventType'} moves no run.", **ids
        )
    run = _locked_run(event.run_id)
    if run is None:
        resolution = resolve_job(namespace=event.job_namespace, name=event.job_name, explicit=explicit)
        if resolution.target is None:
            return Outcome(outcome=IGNORED, detail=resolution.reason, **ids)
        created = _create(event, resolution.target)
        if created is not None:
            return created
        run = _locked_run(event.run_id)  # a concurrent request recorded it first
        assert run is not None
    return _advance(run, event)


def _locked_run(run_id: UUID) -> PipelineRun | None:
    return PipelineRun.objects.select_for_update().filter(openlineage_run_id=run_id).first()


def _create(event: RunEvent, target: Target) -> Outcome | None:
    """The run's first event recorded as a new run; None when another request recorded the run meanwhile."""
    status = END_STATUS.get(event.event_type, PipelineRun.Status.RUNNING)
    ended = status != PipelineRun.Status.RUNNING
    try:
        with transaction.atomic():  # a savepoint: losing the race on the unique runId leaves the batch intact
            run = record_run(
                source=target.source,
                stage=target.stage,
                status=status,
                started_at=event.event_time,
                finished_at=event.event_time if ended else None,
                items_in=event.rows_in or 0,
                items_out=event.rows_out or 0,
                error=_error(event) if status == PipelineRun.Status.FAILED else "",
                openlineage_run_id=event.run_id,
            )
    except IntegrityError:
        if not PipelineRun.objects.filter(openlineage_run_id=event.run_id).exists():
            raise
        return None
    if ended:
        _record_counts(event, run)
        detail = f"Run {run.pk} recorded as {status}: no earlier event of this run came."
    else:
        detail = f"Run {run.pk} started." + _counts_note(event)
    return _outcome(APPLIED, detail, event, run)


def _advance(run: PipelineRun, event: RunEvent) -> Outcome:
    if event.event_type in END_STATUS:
        return _end(run, event)
    changes: dict[str, Any] = {}
    if event.event_time < run.started_at:
        changes["started_at"] = event.event_time  # a late START, after a later event of its run
    if event.event_type == RUNNING and run.status == PipelineRun.Status.RUNNING:
        for name, value in (("items_in", event.rows_in), ("items_out", event.rows_out)):
            if value is not None and value != getattr(run, name):
                changes[name] = value
    if not changes:
        state = "is running" if run.status == PipelineRun.Status.RUNNING else f"already finished as {run.status}"
        return _outcome(DUPLICATE, f"Run {run.pk} {state}: nothing to change.", event, run)
    PipelineRun.objects.filter(pk=run.pk).update(**changes)
    request_status_push_on_commit(reason="run")
    for name, value in changes.items():
        setattr(run, name, value)
    return _outcome(APPLIED, f"Run {run.pk}: {', '.join(sorted(changes))} updated." + _counts_note(event), event, run)


def _end(run: PipelineRun, event: RunEvent) -> Outcome:
    if run.status != PipelineRun.Status.RUNNING:
        return _outcome(DUPLICATE, f"Run {run.pk} already finished as {run.status}.", event, run)
    status = END_STATUS[event.event_type]
    run = finish_run(
        run_id=run.pk,
        status=status,
        # Producers' clocks differ: an end stamped before the start it follows ends at the start.
        finished_at=max(event.event_time, run.started_at),
        items_in=event.rows_in,
        items_out=event.rows_out,
        error=_error(event) if status == PipelineRun.Status.FAILED else None,
    )
    _record_counts(event, run)
    return _outcome(APPLIED, f"Run {run.pk} {status}.", event, run)


def _record_counts(event: RunEvent, run: PipelineRun) -> None:
    if event.counts is not None:
        metric = MetricInput(
            source=run.source,
            metric_type=METRIC_TYPE,
            timestamp=event.event_time,
            run_id=run.pk,
            stage=run.stage,
            **asdict(event.counts),
        )
        record_metrics(metrics=[metric])


def _error(event: RunEvent) -> str:
    message = event.error_message or NO_MESSAGE.get(event.event_type, "")
    return message[:MAX_ERROR_CHARS]


def _counts_note(event: RunEvent) -> str:
    if event.counts is None:
        return ""
    return f" Its {PIPELINE_COUNTS} facet is read only on the event that ends the run."


def _outcome(outcome: str, detail: str, event: RunEvent, run: PipelineRun) -> Outcome:
    return Outcome(
        outcome=outcome,
        detail=detail,
        run_id=event.run_id,
        event_type=event.event_type,
        pipeline_run=run.pk,
        source=run.source,
        stage=run.stage,
    )
