"""Ingest tokens and idempotency records: unique names and keys per token, and records that go with
their token."""

import pytest
from django.db import IntegrityError, transaction

from monitoring.models import IdempotencyRecord, IngestToken
from monitoring.services.tokens import create_ingest_token

pytestmark = pytest.mark.django_db


def _record(token: IngestToken, key: str) -> IdempotencyRecord:
    return IdempotencyRecord.objects.create(
        token=token, key=key, request_hash="0" * 64, response_status=201, response_body={"created": 1}
    )


def test_a_key_is_unique_per_token_not_across_tokens():
    one, _ = create_ingest_token(name="one")
    two, _ = create_ingest_token(name="two")
    _record(one, "batch-1")
    with pytest.raises(IntegrityError, match="idempotency_token_key_unique"), transaction.atomic():
        _record(one, "batch-1")
    _record(two, "batch-1")
    assert IdempotencyRecord.objects.filter(key="batch-1").count() == 2


def test_deleting_a_token_deletes_its_records():
    token, _ = create_ingest_token(name="pipeline")
    _record(token, "batch-1")
    token.delete()
    assert not IdempotencyRecord.objects.exists()


def test_two_tokens_cannot_share_a_name_or_a_prefix():
    IngestToken.objects.create(name="pipeline", prefix="aaaa", key_hash="0" * 64)
    with pytest.raises(IntegrityError), transaction.atomic():
        IngestToken.objects.create(name="pipeline", prefix="bbbb", key_hash="0" * 64)
    with pytest.raises(IntegrityError), transaction.atomic():
        IngestToken.objects.create(name="other", prefix="aaaa", key_hash="0" * 64)


def test_a_token_reads_as_its_name_and_public_prefix_only():
    token, key = create_ingest_token(name="pipeline")
    assert str(token) == f"pipeline ({token.prefix}…)"
    assert key not in str(token) and token.key_hash not in str(token)
