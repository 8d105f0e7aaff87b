"""OpenLineage run events applied to pipeline runs: transitions, idempotency, order, volume, counts, all or none."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.models import DataQualityMetric, PipelineRun
from monitoring.openlineage.events import read_events
from monitoring.selectors import pipeline_status
from monitoring.services import openlineage as service
from monitoring.services.openlineage import APPLIED, DUPLICATE, IGNORED, apply_events
from monitoring.tests.openlineage.spec_examples import example, pipeline_counts, run_event

pytestmark = pytest.mark.django_db


@pytest.fixture
def run_id() -> str:
    return str(uuid.uuid4())


def send(*documents: dict) -> list[service.Outcome]:
    return apply_events(events=read_events(list(documents), now=timezone.now()))


def minutes_ago(minutes: float):
    return timezone.now() - timedelta(minutes=minutes)


def the_run(run_id: str) -> PipelineRun:
    return PipelineRun.objects.get(openlineage_run_id=run_id)


def test_start_then_complete_is_one_succeeded_run_with_its_volume_and_counts(run_id):
    started, ended = minutes_ago(20), minutes_ago(5)
    (first,) = send(run_event("START", run_id=run_id, at=started))
    assert (first.outcome, first.source, first.stage) == (APPLIED, "acled", "scrape")
    assert the_run(run_id).status == PipelineRun.Status.RUNNING
    (second,) = send(
        run_event(
            "COMPLETE",
            run_id=run_id,
            at=ended,
            run_facets=pipeline_counts(geocoding_attempts=120, geocoding_successes=108, validation_attempts=108),
            input_facets=example("facet_data_quality_metrics"),
            output_facets=example("facet_output_statistics"),
        )
    )
    run = the_run(run_id)
    assert (second.outcome, second.pipeline_run) == (APPLIED, run.pk)
    assert (run.status, run.started_at, run.finished_at) == (PipelineRun.Status.SUCCEEDED, started, ended)
    assert (run.items_in, run.items_out, run.error) == (10, 2000, "")
    (metric,) = DataQualityMetric.objects.all()
    assert (metric.source, metric.metric_type, metric.timestamp) == ("acled", "openlineage", ended)
    assert (metric.geocoding_attempts, metric.geocoding_successes, metric.validation_attempts) == (120, 108, 108)
    assert (metric.run_id, metric.stage) == (run.pk, "scrape"), "the counts are the run's, of its stage"


def test_the_same_transition_twice_is_a_no_op(run_id):
    start = run_event("START", run_id=run_id, at=minutes_ago(20))
    complete = run_event("COMPLETE", run_id=run_id, at=minutes_ago(5), run_facets=pipeline_counts(geocoding_attempts=9))
    assert [o.outcome for o in send(start, start, complete, complete)] == [APPLIED, DUPLICATE, APPLIED, DUPLICATE]
    assert [o.outcome for o in send(start, complete)] == [DUPLICATE, DUPLICATE]
    assert PipelineRun.objects.count() == 1
    assert DataQualityMetric.objects.count() == 1  # the counts of the end event, once


def test_fail_and_abort_fail_the_run_with_the_error_message_facets_message(run_id):
    send(run_event("START", run_id=run_id, at=minutes_ago(20)))
    (outcome,) = send(run_event("FAIL", run_id=run_id, at=minutes_ago(5), run_facets=example("facet_error_message")))
    assert outcome.detail == f"Run {outcome.pipeline_run} failed."
    assert (the_run(run_id).status, the_run(run_id).error) == (PipelineRun.Status.FAILED, "failed")
    other, aborted = str(uuid.uuid4()), str(uuid.uuid4())
    send(run_event("FAIL", run_id=other, at=minutes_ago(5)), run_event("ABORT", run_id=aborted, at=minutes_ago(5)))
    assert the_run(other).error == "OpenLineage FAIL event without an errorMessage facet."
    assert (the_run(aborted).status, the_run(aborted).error) == (
        PipelineRun.Status.FAILED,
        "Aborted (OpenLineage ABORT event).",
    )


def test_the_first_end_wins(run_id):
    send(run_event("START", run_id=run_id, at=minutes_ago(20)), run_event("COMPLETE", run_id=run_id, at=minutes_ago(5)))
    (late,) = send(run_event("FAIL", run_id=run_id, at=minutes_ago(4), run_facets=example("facet_error_message")))
    assert late.outcome == DUPLICATE and "already finished as succeeded" in late.detail
    assert the_run(run_id).status == PipelineRun.Status.SUCCEEDED


def test_a_complete_before_its_start_records_the_run_and_the_late_start_moves_its_start(run_id):
    started, ended = minutes_ago(20), minutes_ago(5)
    (complete,) = send(run_event("COMPLETE", run_id=run_id, at=ended))
    assert complete.outcome == APPLIED and "no earlier event" in complete.detail
    assert (the_run(run_id).started_at, the_run(run_id).finished_at) == (ended, ended)
    (start,) = send(run_event("START", run_id=run_id, at=started))
    assert start.outcome == APPLIED
    run = the_run(run_id)
    assert (run.status, run.started_at, run.finished_at) == (PipelineRun.Status.SUCCEEDED, started, ended)
    assert send(run_event("START", run_id=run_id, at=started))[0].outcome == DUPLICATE


def test_an_end_stamped_before_its_start_ends_at_the_start(run_id):
    started = minutes_ago(5)
    send(
        run_event("START", run_id=run_id, at=started),
        run_event("COMPLETE", run_id=run_id, at=started - timedelta(seconds=3)),
    )
    run = the_run(run_id)
    assert (run.status, run.started_at, run.finished_at) == (PipelineRun.Status.SUCCEEDED, started, started)


def test_running_keeps_the_run_running_and_updates_its_volume(run_id):
    (opened,) = send(run_event("RUNNING", run_id=run_id, at=minutes_ago(20)))  # its START was missed
    assert opened.outcome == APPLIED and the_run(run_id).status == PipelineRun.Status.RUNNING
    progress = run_event("RUNNING", run_id=run_id, at=minutes_ago(10), output_facets=example("facet_output_statistics"))
    assert [o.outcome for o in send(progress, progress)] == [APPLIED, DUPLICATE]
    assert (the_run(run_id).status, the_run(run_id).items_out) == (PipelineRun.Status.RUNNING, 2000)
    send(run_event("COMPLETE", run_id=run_id, at=minutes_ago(5)))
    (after,) = send(progress)
    assert after.outcome == DUPLICATE and the_run(run_id).items_out == 2000


def test_counts_are_read_only_on_the_event_that_ends_the_run(run_id):
    (outcome,) = send(
        run_event("START", run_id=run_id, at=minutes_ago(20), run_facets=pipeline_counts(geocoding_attempts=5))
    )
    assert "read only on the event that ends the run" in outcome.detail
    assert not DataQualityMetric.objects.exists()


def test_events_about_no_followed_run_are_ignored(run_id):
    base = {"eventTime": minutes_ago(1).isoformat(), "producer": "p", "schemaURL": "s"}
    outcomes = send(
        run_event("OTHER", run_id=run_id, at=minutes_ago(5)),
        run_event("START", run_id=run_id, at=minutes_ago(5), namespace="workshop", name="process_taxes"),
        {**base, "dataset": {"namespace": "n", "name": "m"}},
        example("spec_start_event"),  # job myjob.mytask: no stage
    )
    assert [o.outcome for o in outcomes] == [IGNORED] * 4
    assert "maps to no stage" in outcomes[1].detail and outcomes[2].detail == "A DatasetEvent is about no run."
    assert not PipelineRun.objects.exists()


def test_the_job_map_is_read_when_events_arrive(settings, run_id):
    settings.MONITORING_OPENLINEAGE_JOB_MAP = '{"workshop/process_taxes": {"source": "gdelt", "stage": "validate"}}'
    (outcome,) = send(run_event("START", run_id=run_id, at=minutes_ago(5), namespace="workshop", name="process_taxes"))
    assert (outcome.outcome, outcome.source, outcome.stage) == (APPLIED, "gdelt", "validate")


def test_a_later_event_of_a_known_run_keeps_its_source_and_stage(settings, run_id):
    send(run_event("START", run_id=run_id, at=minutes_ago(20)))
    settings.MONITORING_OPENLINEAGE_JOB_MAP = '{"airflow/acled.scrape": {"source": "gdelt", "stage": "validate"}}'
    (outcome,) = send(run_event("COMPLETE", run_id=run_id, at=minutes_ago(5)))
    assert (outcome.source, outcome.stage) == ("acled", "scrape")


def test_all_events_of_a_call_apply_or_none(monkeypatch, run_id):
    def broken(**kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(service, "finish_run", broken)
    with pytest.raises(RuntimeError):
        send(
            run_event("START", run_id=run_id, at=minutes_ago(20)),
            run_event("COMPLETE", run_id=run_id, at=minutes_ago(5)),
        )
    assert not PipelineRun.objects.exists()


def test_a_run_recorded_meanwhile_by_another_request_is_advanced_not_duplicated(monkeypatch, run_id):
    send(run_event("START", run_id=run_id, at=minutes_ago(20)))
    real = service._locked_run
    calls = []

    def racing(run_uuid):
        calls.append(run_uuid)
        return None if len(calls) == 1 else real(run_uuid)  # the first look misses the other request's row

    monkeypatch.setattr(service, "_locked_run", racing)
    (outcome,) = send(run_event("COMPLETE", run_id=run_id, at=minutes_ago(5)))
    assert outcome.outcome == APPLIED and len(calls) == 2
    assert PipelineRun.objects.get().status == PipelineRun.Status.SUCCEEDED


def test_the_runs_show_in_the_status_the_failure_as_the_failure_rule_counts_it(settings):
    settings.MONITORING_THRESHOLDS = {**settings.MONITORING_THRESHOLDS, "min_runs": 2}
    ok, failed = str(uuid.uuid4()), str(uuid.uuid4())
    send(
        run_event("START", run_id=ok, at=minutes_ago(30)),
        run_event("COMPLETE", run_id=ok, at=minutes_ago(25)),
        run_event("START", run_id=failed, at=minutes_ago(20)),
        run_event("FAIL", run_id=failed, at=minutes_ago(15), run_facets=example("facet_error_message")),
    )
    (acled,) = pipeline_status()["scraping_health"]["sources"]
    assert (acled["source"], acled["finished_runs"], acled["failed_runs"]) == ("acled", 2, 1)
    assert (acled["failure_rate"], acled["status"], acled["last_error"]) == (50.0, "critical", "failed")
