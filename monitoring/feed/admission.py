"""Who may open the live feed (the public-read setting, a session cookie, a read token in the handshake's
``Authorization`` header, or a one-time ticket) and whether there is room for it (the global and per-IP
connection caps)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.conf import settings

from monitoring import events, telemetry
from monitoring.feed.connections import ACCEPTED
from monitoring.feed.registry import get_connection_registry
from monitoring.feed.session import session_user_id
from monitoring.models import TokenScope
from monitoring.services.tickets import redeem_ticket
from monitoring.services.tokens import authenticate_token, looks_like_key

logger = logging.getLogger(__name__)
REFUSAL_REASONS = {
    events.CLOSE_UNAUTHENTICATED: "unauthenticated",
    events.CLOSE_FORBIDDEN: "forbidden",
    events.CLOSE_RECONNECT: "unavailable",
}
_SCHEMES = (b"bearer", b"token")
_MAX_HEADER = 512  # a key is 60 characters; anything far longer is not one


def bearer_key(scope: dict[str, Any]) -> str | None:
    """The key of an ``Authorization: Bearer <key>`` (or ``Token <key>``) header meant for this server.

    Only a value shaped as one of this server's keys (``cm_``/``cmr_``) counts. Any other header is left
    alone, not refused: a proxy in front (basic auth, an OAuth proxy) may pass its own credentials through
    on a browser's handshake, and that browser still comes in with its cookie or ticket.
    """
    for name, value in scope.get("headers", ()):
        if name != b"authorization" or len(value) > _MAX_HEADER:
            continue
        parts = value.split()
        if len(parts) != 2 or parts[0].lower() not in _SCHEMES:
            continue
        key = parts[1].decode("latin-1")
        if looks_like_key(key):
            return key
    return None


async def _token_refusal(raw_key: str) -> int | None:
    """A read token opens the feed; an ingest token is refused (4403), as is an unknown or revoked key."""
    try:
        token = await database_sync_to_async(authenticate_token)(raw_key=raw_key)
    except Exception:
        # The database is unreachable: the key may still be good, so the client is asked to reconnect.
        logger.warning("token store unavailable; asking the client to reconnect", exc_info=True)
        return events.CLOSE_RECONNECT
    if token is None or token.scope != TokenScope.READ:
        return events.CLOSE_FORBIDDEN
    return None


async def refusal(scope: dict[str, Any], query: dict[str, list[str]]) -> int | None:
    """The close code that refuses this socket, or ``None`` to let it in."""
    if settings.MONITORING_PUBLIC_READ:
        return None
    try:
        if await session_user_id(scope) is not None:
            return None
    except Exception:
        # The session store (the database) is unreachable: the session may still be good.
        logger.warning("session store unavailable; asking the client to reconnect", exc_info=True)
        return events.CLOSE_RECONNECT
    raw_key = bearer_key(scope)
    if raw_key is not None:
        # A key sent is the credential the client chose: a bad one is refused, not passed over for a ticket.
        return await _token_refusal(raw_key)
    ticket = (query.get("ticket") or [""])[0]
    if not ticket:
        return events.CLOSE_UNAUTHENTICATED
    try:
        holder = await sync_to_async(redeem_ticket)(ticket=ticket)
    except Exception:
        # The ticket store (the cache, Redis in production) is unreachable: the ticket may still be
        # good, so the client is asked to reconnect rather than told it is refused.
        logger.warning("ticket store unavailable; asking the client to reconnect", exc_info=True)
        return events.CLOSE_RECONNECT
    if holder is None:
        return events.CLOSE_FORBIDDEN
    return None


@dataclass(frozen=True)
class Admission:
    """``close_code`` refuses the socket (accept, then close with it); ``slot_ip`` holds a cap slot to give back."""

    close_code: int | None = None
    slot_ip: str | None = None


async def admit(scope: dict[str, Any], query: dict[str, list[str]]) -> Admission:
    code = await refusal(scope, query)
    if code is not None:
        telemetry.WS_REFUSED.labels(reason=REFUSAL_REASONS.get(code, str(code))).inc()
        return Admission(close_code=code)
    ip = (scope.get("client") or ("unknown",))[0]
    try:
        verdict = await get_connection_registry().acquire(ip=ip)
    except Exception:
        # Caps need Redis; while it is away the feed degrades to uncapped rather than refusing everyone.
        logger.warning("connection cap unavailable; accepting without a slot", exc_info=True)
        return Admission()
    if verdict != ACCEPTED:
        telemetry.WS_REFUSED.labels(reason=verdict).inc()
        return Admission(close_code=events.CLOSE_TOO_MANY_CONNECTIONS)
    return Admission(slot_ip=ip)


async def release(slot_ip: str | None) -> None:
    if slot_ip is None:
        return
    try:
        await get_connection_registry().release(ip=slot_ip)
    except Exception:
        logger.warning("could not release a connection slot", exc_info=True)
