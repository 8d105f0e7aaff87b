"""Idempotent ingest: a retried request with the same key gets the first answer and writes nothing."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from monitoring.models import IdempotencyRecord, IngestToken

MAX_KEY_LENGTH = 255


class IdempotencyKeyReused(Exception):
    """The key was first used with a different request."""


@dataclass(frozen=True)
class IdempotentResult:
    status: int
    body: Any
    replayed: bool


def request_fingerprint(*, method: str, path: str, data: Any) -> str:
    """Same method, path and validated input give the same fingerprint (``100`` and ``100.0`` alike)."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method.upper()} {path}\n{canonical}".encode()).hexdigest()


def _replay(record: IdempotencyRecord, fingerprint: str) -> IdempotentResult:
    if record.request_hash != fingerprint:
        raise IdempotencyKeyReused("This Idempotency-Key was used with a different request.")
    return IdempotentResult(status=record.response_status, body=record.response_body, replayed=True)


def run_idempotent(
    *, token: IngestToken, key: str, fingerprint: str, action: Callable[[], tuple[int, Any]], ttl_hours: int
) -> IdempotentResult:
    """Run ``action`` once per (token, key). Its writes and the stored answer commit together.

    Only successful (2xx) answers are stored: a request refused as invalid can be corrected and
    retried with the same key.
    """
    existing = IdempotencyRecord.objects.filter(token=token, key=key).first()
    if existing is not None and existing.created_at < timezone.now() - timedelta(hours=ttl_hours):
        # An expired key is free again, whether or not prune_metrics has run since.
        existing.delete()
        existing = None
    if existing is not None:
        return _replay(existing, fingerprint)
    try:
        with transaction.atomic():
            status, body = action()
            if 200 <= status < 300:
                IdempotencyRecord.objects.create(
                    token=token, key=key, request_hash=fingerprint, response_status=status, response_body=body
                )
    except IntegrityError:
        # A concurrent request with the same key committed first; this one's writes were rolled back.
        winner = IdempotencyRecord.objects.filter(token=token, key=key).first()
        if winner is None:
            raise
        return _replay(winner, fingerprint)
    return IdempotentResult(status=status, body=body, replayed=False)
