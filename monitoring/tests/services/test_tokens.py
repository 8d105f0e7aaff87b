"""Ingest tokens are stored hashed and checked in constant time."""

import hashlib

import pytest

from monitoring.models import IngestToken
from monitoring.services.tokens import TokenNameTaken, authenticate_ingest_token, create_ingest_token

pytestmark = pytest.mark.django_db


def test_the_key_is_not_stored_only_its_sha256():
    token, key = create_ingest_token(name="scraper")
    stored = IngestToken.objects.get(pk=token.pk)
    assert key not in {stored.key_hash, stored.prefix, stored.name}
    assert stored.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key.startswith(f"cm_{stored.prefix}_")


def test_the_key_authenticates_its_token_and_marks_it_used():
    token, key = create_ingest_token(name="scraper")
    assert authenticate_ingest_token(raw_key=key) == token
    assert IngestToken.objects.get(pk=token.pk).last_used_at is not None


@pytest.mark.parametrize("mangle", [lambda k: k + "x", lambda k: k[:-1], lambda k: "xx" + k[2:], lambda k: ""])
def test_a_changed_key_does_not_authenticate(mangle):
    _, key = create_ingest_token(name="scraper")
    assert authenticate_ingest_token(raw_key=mangle(key)) is None


def test_names_are_unique():
    create_ingest_token(name="scraper")
    with pytest.raises(TokenNameTaken):
        create_ingest_token(name="scraper")


def test_two_tokens_get_different_keys():
    _, first = create_ingest_token(name="a")
    _, second = create_ingest_token(name="b")
    assert first != second
