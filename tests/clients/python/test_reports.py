"""Reports checked when made, with the server's own rules, and buffered in batches whose composition never
changes once attempted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from conflict_monitor_client import InvalidReport, make_metric
from conflict_monitor_client.reports import MetricBuffer, metrics_request

from monitoring.services.metrics import MetricInput, MetricInputError

CASES = [
    {"source": "acled", "geocoding_attempts": 10, "geocoding_successes": 9},
    {"source": "gdelt.v2:events-1", "validation_attempts": 5, "validation_passes": 5, "metric_type": "daily_2"},
    {"source": "", "geocoding_attempts": 1},
    {"source": "-acled"},
    {"source": "a" * 101},
    {"source": "acled", "metric_type": "Batch"},
    {"source": "acled", "geocoding_attempts": -1},
    {"source": "acled", "geocoding_attempts": 2**31},
    {"source": "acled", "geocoding_attempts": True},
    {"source": "acled", "geocoding_attempts": 1.5},
    {"source": "acled", "geocoding_attempts": 1, "geocoding_successes": 2},
    {"source": "acled", "validation_attempts": 1, "validation_passes": 2},
    {"source": "acled", "geocoding_attempts": "x", "geocoding_successes": 2},
    {"source": "acled", "run_id": 17, "stage": "geocode"},
    {"source": "acled", "run_id": 0},
    {"source": "acled", "run_id": 2**63},
    {"source": "acled", "run_id": True},
    {"source": "acled", "run_id": "17"},
    {"source": "acled", "stage": "load"},
]


@pytest.mark.parametrize("fields", CASES)
def test_a_report_is_refused_exactly_when_the_server_refuses_it_naming_the_same_fields(fields):
    try:
        MetricInput(**fields)
        server_errors: set[str] = set()
    except MetricInputError as exc:
        server_errors = set(exc.errors)
    try:
        make_metric(**fields)
        client_errors: set[str] = set()
    except InvalidReport as exc:
        client_errors = set(exc.fields)
        assert exc.code == "invalid" and exc.status is None
    assert client_errors == server_errors


def test_the_timestamp_is_fixed_when_the_report_is_made_and_kept_in_utc():
    before = datetime.now(UTC)
    stamped = datetime.fromisoformat(make_metric(source="acled").timestamp)
    assert before <= stamped <= datetime.now(UTC)
    given = datetime(2026, 12, 7, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    assert make_metric(source="acled", timestamp=given).timestamp == "2026-12-07T12:00:00.000000Z"
    with pytest.raises(InvalidReport) as raised:
        make_metric(source="acled", timestamp=datetime(2026, 12, 7, 12, 0))  # naive on purpose
    assert set(raised.value.fields) == {"timestamp"}


def test_two_reports_with_the_same_counts_at_different_times_are_two_requests():
    first = make_metric(source="acled", geocoding_attempts=1, timestamp=datetime(2026, 12, 7, 12, tzinfo=UTC))
    again = make_metric(source="acled", geocoding_attempts=1, timestamp=datetime(2026, 12, 7, 12, tzinfo=UTC))
    later = make_metric(source="acled", geocoding_attempts=1, timestamp=datetime(2026, 12, 7, 13, tzinfo=UTC))
    assert metrics_request([first]).idempotency_key == metrics_request([again]).idempotency_key
    assert metrics_request([first]).idempotency_key != metrics_request([later]).idempotency_key


def _metrics(count: int) -> list:
    return [make_metric(source="acled", geocoding_attempts=n) for n in range(count)]


def test_the_buffer_says_when_a_batch_is_full_and_cuts_batches_of_at_most_its_size():
    buffer = MetricBuffer(batch_size=3)
    metrics = _metrics(7)
    assert [buffer.add(metric) for metric in metrics] == [False, False, True, True, True, True, True]
    buffer.seal()
    batches = []
    while (batch := buffer.next_batch()) is not None:
        batches.append(batch)
        buffer.sent(batch)
    assert [len(batch) for batch in batches] == [3, 3, 1]
    assert [metric for batch in batches for metric in batch] == metrics
    assert len(buffer) == 0


def test_a_batch_once_cut_keeps_its_composition_when_more_reports_follow():
    buffer = MetricBuffer(batch_size=5)
    metrics = _metrics(4)
    for metric in metrics[:2]:
        buffer.add(metric)
    buffer.seal()
    attempted = buffer.next_batch()  # say its answer was lost
    for metric in metrics[2:]:
        buffer.add(metric)
    buffer.seal()
    assert buffer.next_batch() == attempted == tuple(metrics[:2])
    assert buffer.pending == metrics
    buffer.sent(attempted)
    assert buffer.next_batch() == tuple(metrics[2:])


def test_a_batch_size_beyond_the_servers_limit_is_refused():
    with pytest.raises(ValueError):
        MetricBuffer(batch_size=5001)
    with pytest.raises(ValueError):
        MetricBuffer(batch_size=0)


def test_an_unlinked_report_sends_the_body_it_always_did_and_a_linked_one_names_its_run_and_stage():
    at = datetime(2026, 12, 7, 12, tzinfo=UTC)
    plain = make_metric(source="acled", geocoding_attempts=1, timestamp=at).as_json()
    assert set(plain) == {
        "source",
        "metric_type",
        "timestamp",
        "geocoding_attempts",
        "geocoding_successes",
        "validation_attempts",
        "validation_passes",
    }, "an unlinked report keeps its key"
    linked = make_metric(source="acled", geocoding_attempts=1, timestamp=at, run_id=17, stage="geocode").as_json()
    assert linked == {**plain, "run_id": 17, "stage": "geocode"}
