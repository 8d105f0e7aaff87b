"""Ingest tokens: created once, stored as a SHA-256, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from django.utils import timezone

from monitoring.models import IngestToken

KEY_PREFIX = "cm"
KEY_SHAPE = re.compile(r"cm_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")
# Refreshing ``last_used_at`` on every call would turn each ingest into two writes.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenNameTaken(Exception):
    pass


def _digest(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def create_ingest_token(*, name: str) -> tuple[IngestToken, str]:
    """Return the token and its key; the key is not stored and cannot be shown again."""
    if IngestToken.objects.filter(name=name).exists():
        raise TokenNameTaken(f"An ingest token named {name!r} already exists.")
    prefix = secrets.token_hex(6)
    raw_key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    token = IngestToken.objects.create(name=name, prefix=prefix, key_hash=_digest(raw_key))
    return token, raw_key


def authenticate_ingest_token(*, raw_key: str) -> IngestToken | None:
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
