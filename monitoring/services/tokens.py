"""API tokens (ingest and read): created once, stored as a SHA-256, compared in constant time.

A key is ``<kind>_<prefix>_<secret>``: ``cm_`` for an ingest key (unchanged since the first tokens),
``cmr_`` for a read key, so a person, a log scrubber or the client can tell the two apart at a glance.
The kind marker is part of the hashed key: it cannot be edited to pass one kind off as the other, and
the stored ``scope`` stays the authority on what a token may do.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from django.utils import timezone

from monitoring.models import IngestToken, TokenScope

KEY_PREFIX = "cm"
READ_KEY_PREFIX = "cmr"
KIND_MARKERS = {TokenScope.INGEST: KEY_PREFIX, TokenScope.READ: READ_KEY_PREFIX}
KEY_SHAPE = re.compile(r"(cm|cmr)_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")
# Refreshing ``last_used_at`` on every call would turn each ingest into two writes.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenNameTaken(Exception):
    pass


def _digest(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def create_token(*, name: str, scope: str) -> tuple[IngestToken, str]:
    """Return the token and its key; the key is not stored and cannot be shown again."""
    if scope not in KIND_MARKERS:
        raise ValueError(f"unknown token scope {scope!r}")
    if IngestToken.objects.filter(name=name).exists():
        raise TokenNameTaken(f"A token named {name!r} already exists.")
    prefix = secrets.token_hex(6)
    raw_key = f"{KIND_MARKERS[scope]}_{prefix}_{secrets.token_urlsafe(32)}"
    token = IngestToken.objects.create(name=name, scope=scope, prefix=prefix, key_hash=_digest(raw_key))
    return token, raw_key


def create_ingest_token(*, name: str) -> tuple[IngestToken, str]:
    return create_token(name=name, scope=TokenScope.INGEST)


def create_read_token(*, name: str) -> tuple[IngestToken, str]:
    return create_token(name=name, scope=TokenScope.READ)


def looks_like_key(value: str) -> bool:
    """Whether ``value`` is meant as one of this server's keys (a ``cm_``/``cmr_`` value), well formed or not."""
    return value.startswith((f"{KEY_PREFIX}_", f"{READ_KEY_PREFIX}_"))


def authenticate_token(*, raw_key: str) -> IngestToken | None:
    """The live (not revoked) token of ``raw_key``, whatever its scope: what it may do is for the caller
    to decide (``token.scope``), so that a key of the wrong kind is refused as not allowed (403), not as
    unknown (401)."""
    # Anything not shaped like a key never reaches the database.
    if not KEY_SHAPE.fullmatch(raw_key):
        return None
    parts = raw_key.split("_", 2)
    token = IngestToken.objects.filter(prefix=parts[1], revoked_at__isnull=True).first()
    if token is None or not hmac.compare_digest(token.key_hash, _digest(raw_key)):
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        IngestToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
