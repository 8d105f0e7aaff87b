"""run_idempotent: one action per (token, key); replays answer the same; failures stay retryable."""

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.models import IdempotencyRecord
from monitoring.services.idempotency import IdempotencyKeyReused, request_fingerprint, run_idempotent
from monitoring.services.tokens import create_ingest_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def token():
    return create_ingest_token(name="pipeline")[0]


def _counting_action(answer: tuple[int, dict]):
    calls = []

    def action():
        calls.append(1)
        return answer

    return action, calls


def test_the_same_key_runs_the_action_once_and_replays_its_answer(token):
    action, calls = _counting_action((201, {"created": 3}))
    first = run_idempotent(token=token, key="k1", fingerprint="f", action=action, ttl_hours=24)
    again = run_idempotent(token=token, key="k1", fingerprint="f", action=action, ttl_hours=24)
    assert (first.replayed, again.replayed) == (False, True)
    assert again.status == 201 and again.body == {"created": 3}
    assert len(calls) == 1


def test_a_key_reused_for_a_different_request_is_refused(token):
    action, _ = _counting_action((201, {}))
    run_idempotent(token=token, key="k1", fingerprint="f1", action=action, ttl_hours=24)
    with pytest.raises(IdempotencyKeyReused):
        run_idempotent(token=token, key="k1", fingerprint="f2", action=action, ttl_hours=24)


def test_a_refused_request_is_not_stored_so_a_corrected_retry_runs(token):
    refused, _ = _counting_action((400, {"errors": "bad"}))
    run_idempotent(token=token, key="k1", fingerprint="bad", action=refused, ttl_hours=24)
    accepted, calls = _counting_action((201, {}))
    result = run_idempotent(token=token, key="k1", fingerprint="good", action=accepted, ttl_hours=24)
    assert (result.replayed, len(calls)) == (False, 1)


def test_an_expired_key_is_free_again(token):
    action, calls = _counting_action((201, {}))
    run_idempotent(token=token, key="k1", fingerprint="f", action=action, ttl_hours=24)
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=25))
    assert not run_idempotent(token=token, key="k1", fingerprint="f", action=action, ttl_hours=24).replayed
    assert len(calls) == 2


def test_keys_belong_to_their_token(token):
    other = create_ingest_token(name="other-pipeline")[0]
    action, calls = _counting_action((201, {}))
    run_idempotent(token=token, key="k1", fingerprint="f", action=action, ttl_hours=24)
    run_idempotent(token=other, key="k1", fingerprint="f", action=action, ttl_hours=24)
    assert len(calls) == 2


def test_an_action_that_raises_writes_nothing(token):
    def action():
        IdempotencyRecord.objects.create(
            token=token, key="side", request_hash="x", response_status=201, response_body={}
        )
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        run_idempotent(token=token, key="k1", fingerprint="f", action=action, ttl_hours=24)
    assert not IdempotencyRecord.objects.exists()


def test_equal_numbers_give_the_same_fingerprint_and_other_paths_do_not():
    same = request_fingerprint(method="post", path="/m", data={"a": 100, "b": [1]})
    assert same == request_fingerprint(method="POST", path="/m", data={"b": [1], "a": 100})
    assert same != request_fingerprint(method="POST", path="/other", data={"a": 100, "b": [1]})
