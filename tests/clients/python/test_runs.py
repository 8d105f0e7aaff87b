"""How a run block ends, step by step without a server: its metrics flushed first, then the run finished as
succeeded or failed; a reporting failure raised, or noted on the block's own exception."""

from __future__ import annotations

import json

import pytest
from conflict_monitor_client import InvalidReport, MetricsNotSent, RetryPolicy, make_metric
from conflict_monitor_client.runs import RunRecord, RunState, exit_steps, failure_message, finish_request, start_request
from conflict_monitor_client.wire import Answer, Send

from tests.clients.python.helpers import drive

POLICY = RetryPolicy(max_attempts=1)
RECORD = {
    "id": 7,
    "source": "acled",
    "stage": "geocode",
    "status": "running",
    "started_at": "2026-12-07T12:00:00Z",
    "finished_at": None,
    "items_in": 0,
    "items_out": 0,
    "error": "",
}


def _state(reports: int, batch_size: int = 2) -> RunState:
    state = RunState(RunRecord.from_json(RECORD), batch_size=batch_size)
    for n in range(reports):
        state.buffer.add(make_metric(source="acled", geocoding_attempts=n))
    return state


def _ok(body):
    return Answer(201, {}, json.dumps(body).encode())


def _refused():
    return Answer(400, {}, b'{"error": "invalid", "detail": "Invalid input.", "fields": {"0": {"source": ["Bad."]}}}')


def _finished(status, error=""):
    return _ok({**RECORD, "status": status, "error": error, "finished_at": "2026-12-07T12:05:00Z"})


def _sent(seen):
    return [(step.request.path, step.request.body) for step in seen if isinstance(step, Send)]


def test_the_metrics_are_flushed_before_the_run_is_finished_with_its_counts():
    state = _state(3)
    state.items_in, state.items_out = 3, 2
    seen, result = drive(exit_steps(state, POLICY, None), [_ok({}), _ok({}), _finished("succeeded")])
    sent = _sent(seen)
    assert [path for path, _ in sent] == ["metrics", "metrics", "runs/7/finish"]
    assert [len(body) for _, body in sent[:2]] == [2, 1]
    assert {key: sent[2][1][key] for key in ("status", "items_in", "items_out")} == {
        "status": "succeeded",
        "items_in": 3,
        "items_out": 2,
    }
    assert "error" not in sent[2][1] and result is None and state.record.status == "succeeded"


def test_a_block_that_raised_finishes_the_run_as_failed_with_the_exceptions_type_and_message():
    error = ValueError("row 12 has no country")
    seen, result = drive(exit_steps(_state(0), POLICY, error), [_finished("failed")])
    (_, body) = _sent(seen)[0]
    assert (body["status"], body["error"]) == ("failed", "ValueError: row 12 has no country")
    assert result is None and not getattr(error, "__notes__", None)


def test_metrics_that_could_not_be_sent_raise_after_the_run_is_finished():
    state = _state(1)
    seen, result = drive(exit_steps(state, POLICY, None), [_refused(), _finished("succeeded")])
    assert [path for path, _ in _sent(seen)] == ["metrics", "runs/7/finish"]
    assert (
        isinstance(result, MetricsNotSent) and len(result.metrics) == 1 and result.fields == {"0": {"source": ["Bad."]}}
    )
    assert len(state.buffer) == 1, "the metrics stay buffered"


def test_with_the_blocks_own_exception_reporting_failures_become_its_notes():
    error = RuntimeError("boom")
    _, result = drive(exit_steps(_state(1), POLICY, error), [_refused(), _refused()])
    assert result is None
    assert [note.split(":")[0] for note in error.__notes__] == ["conflict-monitor run 7"] * 2


def test_the_failure_message_names_the_exception_and_fits_the_servers_limit():
    assert failure_message(KeyboardInterrupt()) == "KeyboardInterrupt"
    assert failure_message(OSError("x" * 20_000)) == ("OSError: " + "x" * 20_000)[:10_000]


@pytest.mark.parametrize(
    ("build", "fields"),
    [
        (lambda: start_request(source="acled", stage="load"), {"stage"}),
        (lambda: start_request(source="", stage="scrape"), {"source"}),
        (lambda: finish_request(1, status="running"), {"status"}),
        (lambda: finish_request(1, status="succeeded", items_in=-1, items_out=True), {"items_in", "items_out"}),
    ],
)
def test_a_run_the_server_would_refuse_is_refused_before_sending(build, fields):
    with pytest.raises(InvalidReport) as raised:
        build()
    assert set(raised.value.fields) == fields
