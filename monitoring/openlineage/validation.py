"""OpenLineage events checked against the specification's JSON Schema (vendored in ``schema/openlineage/``).

A run event is checked against ``RunEvent``, a dataset or job event against its own definition, so the
first error found names the field at fault rather than "matches none of three kinds of event". Then the
facets the monitor reads (``errorMessage``, ``outputStatistics``, ``dataQualityMetrics`` and its own
``conflictMonitor_pipelineCounts``) are checked against their facet schemas; any other facet only
against the base facet (``_producer``, ``_schemaURL``), as the core schema has it, and is otherwise
ignored. Formats (``uuid``, ``date-time``, ``uri``) are annotations to the validator; ``events.py``
parses the two values the monitor uses (``runId``, ``eventTime``).

Every ``$ref`` resolves in a ``referencing.Registry`` built from the vendored files: no network.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource

SCHEMA_DIR = Path(__file__).with_name("schema")
SPEC = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
FACETS = "https://openlineage.io/spec/facets"
ERROR_MESSAGE_FACET = f"{FACETS}/1-0-1/ErrorMessageRunFacet.json"
OUTPUT_STATISTICS_FACET = f"{FACETS}/1-0-2/OutputStatisticsOutputDatasetFacet.json"
DATA_QUALITY_METRICS_FACET = f"{FACETS}/1-0-3/DataQualityMetricsInputDatasetFacet.json"
PIPELINE_COUNTS_FACET = "urn:conflict-monitor:openlineage:facets:1-0-0:PipelineCountsRunFacet.json"
# The facet names the monitor reads, as producers key them.
ERROR_MESSAGE = "errorMessage"
OUTPUT_STATISTICS = "outputStatistics"
DATA_QUALITY_METRICS = "dataQualityMetrics"
PIPELINE_COUNTS = "conflictMonitor_pipelineCounts"
MAX_MESSAGE_CHARS = 300

RUN_EVENT, DATASET_EVENT, JOB_EVENT = "RunEvent", "DatasetEvent", "JobEvent"


@dataclass(frozen=True)
class SchemaError:
    """The first problem of an event: where (a JSON pointer into the event, ``""`` for the event itself) and what.

    Both may quote the event; they are made safe to encode (``safe_text``) when built."""

    pointer: str
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "pointer", safe_text(self.pointer))
        object.__setattr__(self, "message", safe_text(self.message))


def safe_text(text: str) -> str:
    """``text`` with what UTF-8 and PostgreSQL's text refuse (lone surrogates, NUL) written as escapes.

    JSON may carry a lone surrogate (``"\\ud800"``) or a NUL; quoted back in an answer or stored, either
    would make the answer or the write fail."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


@cache
def registry() -> Registry:
    """Every vendored schema (and the monitor's own facet) under its ``$id``."""
    resources = [Resource.from_contents(json.loads(path.read_text())) for path in sorted(SCHEMA_DIR.rglob("*.json"))]
    return Registry().with_resources((resource.id(), resource) for resource in resources)


@cache
def _validator(uri: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": uri}, registry=registry())


def event_kind(document: dict[str, Any]) -> str:
    """Which of the specification's three events ``document`` claims to be (a run event unless it has no run)."""
    if "run" in document or "eventType" in document:
        return RUN_EVENT
    return DATASET_EVENT if "dataset" in document else JOB_EVENT


def first_error(document: object) -> SchemaError | None:
    """The most relevant schema error of one event, or None when the event is valid."""
    if not isinstance(document, dict):
        return SchemaError("", f"An OpenLineage event is a JSON object, not {_json_type(document)}.")
    kind = event_kind(document)
    error = _check(document, f"{SPEC}#/$defs/{kind}", prefix=())
    if error is not None or kind != RUN_EVENT:
        return error
    for path, facets, schema in _read_facets(document):
        error = _check(facets, schema, prefix=path)
        if error is not None:
            return error
    return None


def _read_facets(event: dict[str, Any]) -> Iterator[tuple[tuple[str | int, ...], Any, str]]:
    """(path, facets object, schema) of every facet object that may hold a facet the monitor reads."""
    run_facets = event["run"].get("facets")
    if run_facets is not None:
        yield ("run", "facets"), run_facets, ERROR_MESSAGE_FACET
        yield ("run", "facets"), run_facets, PIPELINE_COUNTS_FACET
    for key, facets_key, schema in (
        ("inputs", "inputFacets", DATA_QUALITY_METRICS_FACET),
        ("outputs", "outputFacets", OUTPUT_STATISTICS_FACET),
    ):
        for index, dataset in enumerate(event.get(key) or ()):
            if dataset.get(facets_key) is not None:
                yield (key, index, facets_key), dataset[facets_key], schema


def _check(instance: Any, uri: str, *, prefix: tuple[str | int, ...]) -> SchemaError | None:
    validator = _validator(uri)
    if validator.is_valid(instance):  # the common case, a third faster than collecting errors
        return None
    error = _deepest(best_match(validator.iter_errors(instance)))
    path = (*prefix, *error.absolute_path)
    message = error.message
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = next(name for name in error.validator_value if name not in error.instance)
        path, message = (*path, missing), "Required."
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 1] + "…"
    return SchemaError(pointer(path), message)


def _deepest(error: ValidationError) -> ValidationError:
    # The specification wraps facet maps in a one-branch anyOf: its "not valid under any of the given
    # schemas" says nothing; the branch's own error names the facet and the field.
    while error.context:
        error = best_match(error.context)
    return error


def pointer(path: tuple[str | int, ...]) -> str:
    """RFC 6901 JSON pointer of ``path``."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


def _json_type(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null" if value is None else type(value).__name__
