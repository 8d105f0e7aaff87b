"""Short-lived, single-use tickets that let a logged-in user open the live feed from any origin
setup where cookies do not reach the socket."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.core.cache import cache

_PREFIX = "ws-ticket:"


def _key(ticket: str) -> str:
    # Only a hash is stored, so a cache dump reveals no usable ticket.
    return _PREFIX + hashlib.sha256(ticket.encode()).hexdigest()


def issue_ticket(*, user_id: int) -> str:
    ticket = secrets.token_urlsafe(32)
    cache.set(_key(ticket), user_id, timeout=settings.WEBSOCKET_TICKET_TTL)
    return ticket


def redeem_ticket(*, ticket: str) -> int | None:
    """The ticket's user id, once; ``None`` if unknown, expired or already used."""
    if not ticket or len(ticket) > 128:
        return None
    key = _key(ticket)
    user_id = cache.get(key)
    # delete() reports whether this caller removed the key: of two racing redeemers only one wins.
    if user_id is None or not cache.delete(key):
        return None
    return user_id
