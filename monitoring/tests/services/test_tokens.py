"""Tokens (ingest and read) are stored hashed and checked in constant time; each kind has its own key prefix."""

import hashlib
import hmac

import pytest

from monitoring.models import IngestToken, TokenScope
from monitoring.services.tokens import (
    TokenNameTaken,
    authenticate_token,
    create_ingest_token,
    create_read_token,
    create_token,
)

pytestmark = pytest.mark.django_db


def test_the_key_is_not_stored_only_its_sha256():
    token, key = create_ingest_token(name="scraper")
    stored = IngestToken.objects.get(pk=token.pk)
    assert key not in {stored.key_hash, stored.prefix, stored.name}
    assert stored.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key.startswith(f"cm_{stored.prefix}_")


def test_the_key_authenticates_its_token_and_marks_it_used():
    token, key = create_ingest_token(name="scraper")
    assert authenticate_token(raw_key=key) == token
    assert IngestToken.objects.get(pk=token.pk).last_used_at is not None


@pytest.mark.parametrize("mangle", [lambda k: k + "x", lambda k: k[:-1], lambda k: "xx" + k[2:], lambda k: ""])
def test_a_changed_key_does_not_authenticate(mangle):
    _, key = create_ingest_token(name="scraper")
    assert authenticate_token(raw_key=mangle(key)) is None


def test_names_are_unique():
    create_ingest_token(name="scraper")
    with pytest.raises(TokenNameTaken):
        create_ingest_token(name="scraper")


def test_two_tokens_get_different_keys():
    _, first = create_ingest_token(name="a")
    _, second = create_ingest_token(name="b")
    assert first != second


def test_the_secret_is_checked_by_a_constant_time_comparison_of_digests(monkeypatch):
    """Timing cannot reveal how much of a guessed key is right: the lookup uses the key's public
    prefix only, and the secret is compared as two SHA-256 digests by ``hmac.compare_digest``."""
    calls, compare = [], hmac.compare_digest

    def recording(a, b):
        calls.append((a, b))
        return compare(a, b)

    monkeypatch.setattr("monitoring.services.tokens.hmac.compare_digest", recording)
    token, key = create_ingest_token(name="scraper")
    guess = key[:-1] + ("A" if key[-1] != "A" else "B")
    assert authenticate_token(raw_key=guess) is None
    assert authenticate_token(raw_key=key) == token
    assert calls == [
        (token.key_hash, hashlib.sha256(guess.encode()).hexdigest()),
        (token.key_hash, token.key_hash),
    ]


def test_a_read_token_has_its_own_key_kind_and_authenticates_with_its_scope():
    token, key = create_read_token(name="follower")
    assert key.startswith(f"cmr_{token.prefix}_") and token.scope == TokenScope.READ
    assert authenticate_token(raw_key=key) == token
    # The kind marker is hashed with the rest: relabelling a read key as an ingest key breaks it.
    assert authenticate_token(raw_key="cm_" + key.removeprefix("cmr_")) is None


def test_existing_and_new_ingest_tokens_are_ingest_scoped():
    token, key = create_ingest_token(name="scraper")
    assert token.scope == TokenScope.INGEST and key.startswith("cm_")
    assert IngestToken._meta.get_field("scope").default == TokenScope.INGEST


def test_names_are_unique_across_token_kinds():
    create_ingest_token(name="shared")
    with pytest.raises(TokenNameTaken):
        create_read_token(name="shared")


def test_an_unknown_scope_is_refused():
    with pytest.raises(ValueError, match="unknown token scope"):
        create_token(name="x", scope="admin")
