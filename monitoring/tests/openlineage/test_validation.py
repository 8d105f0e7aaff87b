"""Events checked against the vendored OpenLineage JSON Schema: the specification's examples pass or fail as
the schema says, and the first problem is named by its JSON pointer."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from monitoring.openlineage import validation
from monitoring.openlineage.validation import SCHEMA_DIR, SchemaError, first_error
from monitoring.tests.openlineage.spec_examples import SCHEMA_URL, example, pipeline_counts, run_event

AT = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
RUN = "3b452093-782c-4ef2-9c0c-aafe2aa6f34d"


def test_the_specifications_example_events_are_valid():
    assert first_error(example("spec_start_event")) is None
    assert first_error(example("python_client_serde_run_event")) is None


@pytest.mark.parametrize("name", ["examples_start_single_input", "examples_complete_single_output"])
def test_the_website_examples_lack_the_schema_url_the_schema_requires(name):
    assert first_error(example(name)) == SchemaError("/schemaURL", "Required.")
    assert first_error({**example(name), "schemaURL": SCHEMA_URL}) is None


def test_the_specifications_facet_examples_are_valid_where_they_belong():
    event = run_event(
        "COMPLETE",
        run_id=RUN,
        at=AT,
        run_facets={**example("facet_error_message"), **example("facet_parent_run"), **pipeline_counts()},
        input_facets=example("facet_data_quality_metrics"),
        output_facets=example("facet_output_statistics"),
    )
    assert first_error(event) is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda e: e.update(eventType="BEGIN"), "/eventType"),
        (lambda e: e["run"].update(runId=5), "/run/runId"),
        (lambda e: e["job"].pop("name"), "/job/name"),
        (lambda e: e.pop("eventTime"), "/eventTime"),
        (lambda e: e.update(inputs={}), "/inputs"),
        (lambda e: e["outputs"][0].update(outputFacets=[]), "/outputs/0/outputFacets"),
    ],
)
def test_the_first_problem_is_named_by_its_json_pointer(change, expected):
    event = example("spec_start_event")
    change(event)
    assert first_error(event).pointer == expected


def test_an_unknown_facet_is_checked_only_as_a_facet():
    fine = {"airflow_runArgs": {"_producer": "p", "_schemaURL": "s", "externalTrigger": True}}
    assert first_error(run_event("START", run_id=RUN, at=AT, run_facets=fine)) is None
    bare = {"airflow_runArgs": {"externalTrigger": True}}
    error = first_error(run_event("START", run_id=RUN, at=AT, run_facets=bare))
    assert error == SchemaError("/run/facets/airflow_runArgs/_producer", "Required.")


@pytest.mark.parametrize(
    ("facets", "where", "expected"),
    [
        (
            {"errorMessage": {"_producer": "p", "_schemaURL": "s", "message": "x"}},
            "run",
            "/errorMessage/programmingLanguage",
        ),
        (pipeline_counts(geocoding_attempts=-1), "run", "/conflictMonitor_pipelineCounts/geocoding_attempts"),
        (pipeline_counts(validation_passes="7"), "run", "/conflictMonitor_pipelineCounts/validation_passes"),
        (
            {"outputStatistics": {"_producer": "p", "_schemaURL": "s", "rowCount": 1.5}},
            "output",
            "/outputStatistics/rowCount",
        ),
        (
            {"dataQualityMetrics": {"_producer": "p", "_schemaURL": "s", "rowCount": 3}},
            "input",
            "/dataQualityMetrics/columnMetrics",
        ),
    ],
)
def test_the_facets_the_monitor_reads_are_checked_against_their_own_schemas(facets, where, expected):
    event = run_event("COMPLETE", run_id=RUN, at=AT, **{f"{where}_facets": facets})
    prefix = {"run": "/run/facets", "input": "/inputs/0/inputFacets", "output": "/outputs/0/outputFacets"}[where]
    assert first_error(event).pointer == prefix + expected


def test_a_body_that_is_not_an_object_is_named_as_such():
    assert first_error([]) == SchemaError("", "An OpenLineage event is a JSON object, not an array.")
    assert first_error("START").message.endswith("not a string.")


def test_dataset_and_job_events_are_checked_against_their_own_definitions():
    base = {"eventTime": AT.isoformat(), "producer": "p", "schemaURL": "s"}
    assert first_error({**base, "dataset": {"namespace": "n", "name": "m"}}) is None
    assert first_error({**base, "job": {"namespace": "n", "name": "m"}}) is None
    assert first_error({**base, "dataset": {"namespace": "n"}}) == SchemaError("/dataset/name", "Required.")


def test_pointers_escape_and_quoted_input_is_made_safe_to_encode():
    facets = {"a/b~c\ud800": {"_producer": 1, "_schemaURL": "s"}}
    error = first_error(run_event("START", run_id=RUN, at=AT, run_facets=facets))
    assert error.pointer == "/run/facets/a~1b~0c\\ud800/_producer"
    json.dumps(error.message).encode()  # no lone surrogate left
    assert validation.safe_text("x\x00y") == "x\\x00y"


def test_long_messages_are_cut():
    event = example("spec_start_event")
    event["eventType"] = "X" * 5000
    assert len(first_error(event).message) == validation.MAX_MESSAGE_CHARS


def test_every_reference_resolves_from_the_vendored_files_without_the_network():
    ids = {json.loads(path.read_text())["$id"] for path in SCHEMA_DIR.rglob("*.json")}
    registry = validation.registry()
    assert ids == set(registry)
    # Resolving a facet's reference to the core schema finds the vendored copy.
    resolver = registry.resolver()
    assert resolver.lookup(f"{validation.SPEC}#/$defs/RunFacet").contents["description"] == "A Run Facet"
    for path in SCHEMA_DIR.rglob("*.json"):
        text = path.read_text()
        for ref in {part.split('"')[0] for part in text.split('"$ref": "')[1:]}:
            resolver.lookup(ref if not ref.startswith("#") else json.loads(text)["$id"] + ref)


def test_the_vendored_schemas_keep_their_licence():
    vendored = SCHEMA_DIR / "openlineage"
    assert "Apache License" in (vendored / "LICENSE").read_text()
    assert (vendored / "NOTICE.txt").exists()
    assert "8f02abfb7a252783b95df79f443edb13959bf52c" in (vendored / "README.md").read_text()


def test_a_random_run_id_is_schema_valid():
    assert first_error(run_event("START", run_id=str(uuid.uuid4()), at=AT)) is None
