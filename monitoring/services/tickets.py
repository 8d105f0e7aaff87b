"""Short-lived, single-use tickets that open the live feed for a logged-in user (from any origin setup
where cookies do not reach the socket) or for a program holding a read token."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.core.cache import cache

_PREFIX = "ws-ticket:"
_TOKEN_HOLDER = "token:"  # noqa: S105 (a label in the cache value, not a secret)


def _key(ticket: str) -> str:
    # Only a hash is stored, so a cache dump reveals no usable ticket.
    return _PREFIX + hashlib.sha256(ticket.encode()).hexdigest()


def issue_ticket(*, user_id: int | None = None, token_id: int | None = None) -> str:
    """A ticket for the user ``user_id`` or for the read token ``token_id`` (exactly one of them)."""
    if (user_id is None) == (token_id is None):
        raise ValueError("a ticket is issued to a user or to a token")
    # A user is stored as their bare id, as before tokens could hold tickets: a ticket issued by one
    # version of the server redeems on another during a rolling deploy.
    holder: int | str = user_id if user_id is not None else f"{_TOKEN_HOLDER}{token_id}"
    ticket = secrets.token_urlsafe(32)
    cache.set(_key(ticket), holder, timeout=settings.WEBSOCKET_TICKET_TTL)
    return ticket


def redeem_ticket(*, ticket: str) -> int | str | None:
    """The ticket's holder, once: a user's id, or ``"token:<id>"``; ``None`` if unknown, expired or already used.

    A token's ticket is not checked against the token again: it was issued to a live read token at most
    ``WEBSOCKET_TICKET_TTL`` seconds before, and a revocation stops new tickets and handshakes.
    """
    if not ticket or len(ticket) > 128:
        return None
    key = _key(ticket)
    holder = cache.get(key)
    # delete() reports whether this caller removed the key: of two racing redeemers only one wins.
    if holder is None or not cache.delete(key):
        return None
    return holder
