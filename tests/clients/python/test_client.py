"""``Monitor`` against a real server: the run block, batching, content-derived idempotency (a retried or
repeated report is stored once), and nothing lost without an error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from conflict_monitor_client import (
    AuthenticationFailed,
    InvalidReport,
    MetricsNotSent,
    Monitor,
    RetryPolicy,
    Sent,
    make_metric,
)

from tests.clients.python.helpers import SERVER_MARKS, Wire, revoke, stored_links, stored_metrics
from tests.clients.python.stub_server import Forward, stub_server

pytestmark = list(SERVER_MARKS)
FAST = RetryPolicy(max_attempts=4, initial_delay=0.05, max_delay=0.2)


def _run(run_id: int):
    from monitoring.models import PipelineRun

    return PipelineRun.objects.get(pk=run_id)


def test_a_run_block_starts_the_run_stores_its_reports_in_batches_and_finishes_it_as_succeeded(server_url, server_key):
    wire = Wire()
    with (
        wire.client() as http,
        Monitor(server_url, server_key, batch_size=3, http_client=http) as monitor,
        monitor.run("acled", "geocode") as run,
    ):
        assert _run(run.id).status == "running"
        for n in range(7):
            run.report(geocoding_attempts=10 + n, geocoding_successes=n)
            if n == 2:
                assert len(stored_metrics()) == 3, "a full batch is sent at once"
        run.items_in, run.items_out = 120, 118
        assert run.pending == 1
    assert stored_metrics() == [("acled", "batch", 10 + n, n, 0, 0) for n in range(7)]
    assert stored_links() == [(run.id, "geocode")] * 7, "each stored metric names its run and the run's stage"
    assert wire.requests == [
        ("POST", "runs"),
        *[("POST", "metrics")] * 3,
        ("POST", f"runs/{run.id}/finish"),
    ]
    stored = _run(run.id)
    assert (stored.source, stored.stage, stored.status, stored.items_in, stored.items_out) == (
        "acled",
        "geocode",
        "succeeded",
        120,
        118,
    )
    assert run.record.status == "succeeded" and run.pending == 0


def test_an_exception_in_the_block_fails_the_run_with_its_message_and_goes_on(server_url, server_key):
    error = RuntimeError("the site answered 503 all night")
    with (
        Monitor(server_url, server_key) as monitor,
        pytest.raises(RuntimeError) as raised,
        monitor.run("acled", "scrape") as run,
    ):
        run.report(validation_attempts=5, validation_passes=4)
        raise error
    assert raised.value is error and not getattr(error, "__notes__", None)
    stored = _run(run.id)
    assert (stored.status, stored.error) == ("failed", "RuntimeError: the site answered 503 all night")
    assert stored_metrics() == [("acled", "batch", 0, 0, 5, 4)], "what was reported before the failure is kept"
    assert stored_links() == [(run.id, "scrape")]


def test_flush_sends_the_buffered_reports_now(server_url, server_key):
    with Monitor(server_url, server_key) as monitor, monitor.run("gdelt", "validate") as run:
        run.report(validation_attempts=3, validation_passes=3)
        assert stored_metrics() == []
        assert run.flush() == Sent(metrics=1, replayed=0)
        assert stored_metrics() == [("gdelt", "batch", 0, 0, 3, 3)]
        assert run.flush() == Sent(metrics=0, replayed=0)


def test_the_same_reports_sent_again_are_answered_from_the_first_and_not_stored_twice(server_url, server_key):
    at = datetime.now(UTC) - timedelta(hours=1)
    later = at + timedelta(minutes=30)
    reports = [
        make_metric(source="acled", geocoding_attempts=100, geocoding_successes=90, timestamp=at),
        make_metric(source="acled", geocoding_attempts=50, geocoding_successes=45, timestamp=later),
    ]
    wire = Wire()
    with wire.client() as http, Monitor(server_url, server_key, http_client=http) as monitor:
        for _ in range(2):  # a job re-sending the same hour's figures, with the same timestamps
            monitor.send_metrics(reports)
    assert stored_metrics() == [("acled", "batch", 100, 90, 0, 0), ("acled", "batch", 50, 45, 0, 0)]
    metric_answers = [
        answer for request, answer in zip(wire.requests, wire.answers, strict=True) if request[1] == "metrics"
    ]
    assert metric_answers == [(201, False), (201, True)]


def test_a_re_run_is_a_new_run_and_its_reports_are_stored_as_its_own(server_url, server_key):
    """A report in a run block names its run, so the same figures from a second run are that run's."""
    at = datetime.now(UTC) - timedelta(hours=1)
    runs = []
    with Monitor(server_url, server_key) as monitor:
        for _ in range(2):
            with monitor.run("acled", "geocode") as run:
                run.report(geocoding_attempts=100, geocoding_successes=90, timestamp=at)
            runs.append(run.id)
    assert stored_metrics() == [("acled", "batch", 100, 90, 0, 0)] * 2
    assert sorted(stored_links()) == [(runs[0], "geocode"), (runs[1], "geocode")]


def test_answers_lost_after_the_server_wrote_are_retried_and_nothing_is_stored_twice(server_port, server_key):
    from monitoring.models import PipelineRun

    # Each request's first answer is lost after the server stored it: start, the metrics, the finish.
    script = [Forward(drop=True), Forward()] * 3
    with (
        stub_server(script, then=Forward(), upstream=server_port) as lossy,
        Monitor(lossy.url, server_key, retry=FAST) as monitor,
        monitor.run("acled", "scrape") as run,
    ):
        for n in range(4):
            run.report(geocoding_attempts=n)
    endpoints = [request.path.rsplit("/", 1)[-1] for request in lossy.received]
    assert endpoints == ["runs", "runs", "metrics", "metrics", "finish", "finish"]
    assert PipelineRun.objects.count() == 1 and _run(run.id).status == "succeeded"
    assert stored_metrics() == [("acled", "batch", n, 0, 0, 0) for n in range(4)]


def test_metrics_that_cannot_be_stored_raise_at_the_end_of_the_block_and_are_handed_back(server_url, server_key):
    with (
        Monitor(server_url, server_key) as monitor,
        pytest.raises(MetricsNotSent) as raised,
        monitor.run("acled", "geocode") as run,
    ):
        run.report(geocoding_attempts=10, geocoding_successes=9)
        run.report(geocoding_attempts=20, geocoding_successes=19)
        revoke(server_key)
    assert [metric.geocoding_attempts for metric in raised.value.metrics] == [10, 20]
    assert isinstance(raised.value.__cause__, AuthenticationFailed)
    assert (raised.value.status, raised.value.code) == (401, "authentication_failed")
    assert any("finishing run" in note for note in raised.value.__notes__)
    assert stored_metrics() == [] and _run(run.id).status == "running"


def test_a_reporting_failure_in_a_failing_block_is_noted_on_the_blocks_own_exception(server_url, server_key):
    with (
        Monitor(server_url, server_key) as monitor,
        pytest.raises(KeyError) as raised,
        monitor.run("acled", "geocode") as run,
    ):
        run.report(geocoding_attempts=10)
        revoke(server_key)
        raise KeyError("row 12")
    notes = raised.value.__notes__
    assert len(notes) == 2 and "1 metric(s) not sent" in notes[0] and "authentication_failed" in notes[1]


def test_an_invalid_report_fails_where_it_is_made_and_sends_nothing(server_url, server_key):
    wire = Wire()
    with (
        wire.client() as http,
        Monitor(server_url, server_key, http_client=http) as monitor,
        pytest.raises(InvalidReport) as raised,
        monitor.run("acled", "geocode") as run,
    ):
        run.report(geocoding_attempts=1, geocoding_successes=2)
    assert raised.value.fields == {"geocoding_successes": ["Cannot exceed geocoding_attempts."]}
    assert ("POST", "metrics") not in wire.requests
    assert _run(run.id).error.startswith("InvalidReport: invalid: Invalid input. geocoding_successes")


def test_a_run_is_reported_on_only_inside_its_block(server_url, server_key):
    with Monitor(server_url, server_key) as monitor:
        run = monitor.run("acled", "scrape")
        with pytest.raises(RuntimeError, match="has not started"):
            run.report(geocoding_attempts=1)
        with run:
            pass
        with pytest.raises(RuntimeError, match="is finished"):
            run.report(geocoding_attempts=1)
        with pytest.raises(RuntimeError, match="entered once"):
            run.__enter__()
    assert run.record.status == "succeeded" and stored_metrics() == []


def test_a_run_of_an_unknown_stage_is_refused_before_sending(server_url, server_key):
    with Monitor(server_url, server_key) as monitor, pytest.raises(InvalidReport) as raised:
        monitor.start_run("acled", "load")
    assert set(raised.value.fields) == {"stage"}
