"""OpenLineage events, validated (``validation``), read into what the monitor uses of them.

A run event gives its run's identity and transition (``runId``, ``eventType``, ``eventTime``), its job
(``namespace``, ``name``), its volume (the ``rowCount`` of each output's ``outputStatistics`` facet, and
of each input's ``dataQualityMetrics`` facet), the failure message of an ``errorMessage`` run facet and
the counts of the monitor's own ``conflictMonitor_pipelineCounts`` run facet. Everything else in the
event is left alone. A dataset or job event (no run) is read as a ``StaticEvent``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from monitoring.models.metrics import COUNT_FIELDS
from monitoring.openlineage import validation
from monitoring.openlineage.validation import SchemaError
from monitoring.services.metrics import MAX_CLOCK_SKEW, MAX_COUNT, PART_OF

START, RUNNING, COMPLETE, ABORT, FAIL, OTHER = "START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"


@dataclass(frozen=True, kw_only=True)
class PipelineCounts:
    """The ``conflictMonitor_pipelineCounts`` run facet (absent fields are 0)."""

    geocoding_attempts: int = 0
    geocoding_successes: int = 0
    validation_attempts: int = 0
    validation_passes: int = 0


@dataclass(frozen=True, kw_only=True)
class RunEvent:
    run_id: UUID
    # None when the event has none (the schema does not require it): no transition.
    event_type: str | None
    event_time: datetime  # aware; a time without an offset is taken as UTC
    job_namespace: str
    job_name: str
    # Summed over the datasets that report one, at most MAX_COUNT; None when none does.
    rows_in: int | None
    rows_out: int | None
    error_message: str | None
    counts: PipelineCounts | None


@dataclass(frozen=True, kw_only=True)
class StaticEvent:
    """A ``DatasetEvent`` or ``JobEvent``: valid, and about no run."""

    kind: str


class InvalidEvents(ValueError):
    """The problem of each refused event: by position in a list body, under None for a single event."""

    def __init__(self, errors: dict[int | None, SchemaError]) -> None:
        first_index, first = next(iter(errors.items()))
        where = "" if first_index is None else f"event {first_index}: "
        super().__init__(f"{where}{first.pointer or 'the event'}: {first.message}")
        self.errors = errors


class _Invalid(Exception):
    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        self.error = SchemaError(validation.pointer(path), message)


def read_events(body: object, *, now: datetime) -> list[RunEvent | StaticEvent]:
    """One event (an object) or a list of them, read all or none: ``InvalidEvents`` names each refused one."""
    if isinstance(body, list):
        if not body:
            raise InvalidEvents({None: SchemaError("", "Expected at least one event.")})
        documents: Iterable[tuple[int | None, object]] = enumerate(body)
    else:
        documents = [(None, body)]
    events: list[RunEvent | StaticEvent] = []
    errors: dict[int | None, SchemaError] = {}
    for index, document in documents:
        try:
            events.append(read_event(document, now=now))
        except InvalidEvents as exc:
            errors[index] = exc.errors[None]
    if errors:
        raise InvalidEvents(errors)
    return events


def read_event(document: object, *, now: datetime) -> RunEvent | StaticEvent:
    error = validation.first_error(document)
    if error is not None:
        raise InvalidEvents({None: error})
    assert isinstance(document, dict)  # first_error refuses anything else
    kind = validation.event_kind(document)
    if kind != validation.RUN_EVENT:
        return StaticEvent(kind=kind)
    try:
        return _read_run_event(document, now=now)
    except _Invalid as exc:
        raise InvalidEvents({None: exc.error}) from None


def _read_run_event(event: dict[str, Any], *, now: datetime) -> RunEvent:
    run_facets = event["run"].get("facets") or {}
    error_facet = run_facets.get(validation.ERROR_MESSAGE)
    return RunEvent(
        run_id=_uuid(event["run"]["runId"]),
        event_type=event.get("eventType"),
        event_time=_event_time(event["eventTime"], now=now),
        job_namespace=event["job"]["namespace"],
        job_name=event["job"]["name"],
        rows_in=_rows(event, "inputs", "inputFacets", validation.DATA_QUALITY_METRICS),
        rows_out=_rows(event, "outputs", "outputFacets", validation.OUTPUT_STATISTICS),
        error_message=validation.safe_text(error_facet["message"]) if error_facet is not None else None,
        counts=_counts(run_facets.get(validation.PIPELINE_COUNTS)),
    )


def _uuid(value: str) -> UUID:
    # The specification's runId is a UUID (its schema says so only as a format annotation).
    try:
        return UUID(value)
    except ValueError:
        raise _Invalid(("run", "runId"), f"{value[:60]!r} is not a UUID.") from None


def _event_time(value: str, *, now: datetime) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _Invalid(("eventTime",), f"{value[:60]!r} is not an ISO 8601 date-time.") from None
    if moment.tzinfo is None:
        # Older Python clients sent naive times (the specification's own client test event has one).
        moment = moment.replace(tzinfo=UTC)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:  # year 1 east of UTC, year 9999 west of it
        raise _Invalid(("eventTime",), f"{value[:60]!r} is out of range.") from None
    if moment > now + MAX_CLOCK_SKEW:
        raise _Invalid(("eventTime",), "Lies more than 5 minutes in the future.")
    return moment


def _rows(event: dict[str, Any], key: str, facets_key: str, facet: str) -> int | None:
    total = None
    for index, dataset in enumerate(event.get(key) or ()):
        row_count = ((dataset.get(facets_key) or {}).get(facet) or {}).get("rowCount")
        if row_count is None:
            continue
        if row_count < 0:
            raise _Invalid((key, index, facets_key, facet, "rowCount"), "Cannot be negative.")
        total = min(MAX_COUNT, (total or 0) + row_count)
    return total


def _counts(facet: dict[str, Any] | None) -> PipelineCounts | None:
    if facet is None:
        return None
    counts = PipelineCounts(**{name: facet[name] for name in COUNT_FIELDS if name in facet})
    for part, whole in PART_OF:
        if getattr(counts, part) > getattr(counts, whole):
            raise _Invalid(("run", "facets", validation.PIPELINE_COUNTS, part), f"Cannot exceed {whole}.")
    return counts
