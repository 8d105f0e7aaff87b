"""Validated events read into what the monitor uses: run, transition, time, job, volume, error, counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from monitoring.openlineage.events import InvalidEvents, PipelineCounts, RunEvent, StaticEvent, read_event, read_events
from monitoring.services.metrics import MAX_COUNT
from monitoring.tests.openlineage.spec_examples import example, pipeline_counts, run_event

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
AT = NOW - timedelta(minutes=30)
RUN = "d46e465b-d358-4d32-83d4-df660ff614dd"


def test_the_specifications_start_example():
    event = read_event(example("spec_start_event"), now=NOW)
    assert event == RunEvent(
        run_id=UUID("3b452093-782c-4ef2-9c0c-aafe2aa6f34d"),
        event_type="START",
        event_time=datetime(2020, 12, 9, 23, 37, 31, 81000, tzinfo=UTC),
        job_namespace="my-scheduler-namespace",
        job_name="myjob.mytask",
        rows_in=None,
        rows_out=None,
        error_message=None,
        counts=None,
    )


def test_a_time_without_an_offset_is_utc_and_an_offset_is_converted():
    naive = read_event(example("python_client_serde_run_event"), now=NOW)
    assert naive.event_time == datetime(2021, 11, 3, 10, 53, 52, 427343, tzinfo=UTC)
    website = {**example("examples_start_single_input"), "schemaURL": "s"}
    assert read_event(website, now=NOW).event_time == datetime(2020, 12, 28, 9, 52, 0, 1000, tzinfo=UTC)


def test_volume_error_and_counts_come_from_the_facets_the_monitor_reads():
    event = run_event(
        "FAIL",
        run_id=RUN,
        at=AT,
        run_facets={
            **example("facet_error_message"),
            **example("facet_parent_run"),
            **pipeline_counts(geocoding_attempts=120, geocoding_successes=108, validation_attempts=108),
        },
        input_facets=example("facet_data_quality_metrics"),
        output_facets=example("facet_output_statistics"),
    )
    event["outputs"].append({**event["outputs"][0], "name": "second"})
    read = read_event(event, now=NOW)
    assert (read.rows_in, read.rows_out, read.error_message) == (10, 4000, "failed")
    assert read.counts == PipelineCounts(geocoding_attempts=120, geocoding_successes=108, validation_attempts=108)
    assert read.event_type == "FAIL" and read.event_time == AT


def test_row_counts_are_capped_at_the_largest_count():
    facet = example("facet_output_statistics")
    facet["outputStatistics"]["rowCount"] = 10**15
    assert read_event(run_event("COMPLETE", run_id=RUN, at=AT, output_facets=facet), now=NOW).rows_out == MAX_COUNT


@pytest.mark.parametrize(
    ("change", "pointer", "message"),
    [
        (lambda e: e["run"].update(runId="not-a-uuid"), "/run/runId", "'not-a-uuid' is not a UUID."),
        (lambda e: e.update(eventTime="yesterday"), "/eventTime", "'yesterday' is not an ISO 8601 date-time."),
        (lambda e: e.update(eventTime=(NOW + timedelta(minutes=6)).isoformat()), "/eventTime", "future"),
        (lambda e: e.update(eventTime="0001-01-01T00:00:00+14:00"), "/eventTime", "out of range"),
        (
            lambda e: e["outputs"][0].update(
                outputFacets={"outputStatistics": {"_producer": "p", "_schemaURL": "s", "rowCount": -1}}
            ),
            "/outputs/0/outputFacets/outputStatistics/rowCount",
            "Cannot be negative.",
        ),
        (
            lambda e: e["run"].update(facets=pipeline_counts(validation_attempts=1, validation_passes=2)),
            "/run/facets/conflictMonitor_pipelineCounts/validation_passes",
            "Cannot exceed validation_attempts.",
        ),
    ],
)
def test_what_the_schema_leaves_open_is_checked_when_read(change, pointer, message):
    event = run_event("START", run_id=RUN, at=AT)
    change(event)
    with pytest.raises(InvalidEvents) as caught:
        read_event(event, now=NOW)
    (error,) = caught.value.errors.values()
    assert error.pointer == pointer
    assert message in error.message


def test_a_list_is_read_whole_or_refused_naming_each_bad_event():
    good = run_event("START", run_id=RUN, at=AT)
    assert len(read_events([good, good], now=NOW)) == 2
    with pytest.raises(InvalidEvents) as caught:
        read_events([good, {**good, "eventType": "GO"}, good, 7], now=NOW)
    assert {index: error.pointer for index, error in caught.value.errors.items()} == {1: "/eventType", 3: ""}
    assert str(caught.value).startswith("event 1: /eventType: 'GO' is not one of")


def test_a_single_event_and_an_empty_list():
    assert isinstance(read_events(run_event("START", run_id=RUN, at=AT), now=NOW)[0], RunEvent)
    with pytest.raises(InvalidEvents) as caught:
        read_events([], now=NOW)
    assert caught.value.errors[None].message == "Expected at least one event."


def test_dataset_and_job_events_are_read_as_about_no_run():
    base = {"eventTime": AT.isoformat(), "producer": "p", "schemaURL": "s"}
    assert read_event({**base, "dataset": {"namespace": "n", "name": "m"}}, now=NOW) == StaticEvent(kind="DatasetEvent")
    assert read_event({**base, "job": {"namespace": "n", "name": "m"}}, now=NOW) == StaticEvent(kind="JobEvent")


def test_an_event_without_an_event_type_is_read_with_none():
    event = run_event("START", run_id=RUN, at=AT)
    del event["eventType"]
    assert read_event(event, now=NOW).event_type is None
