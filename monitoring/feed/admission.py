"""Who may open the live feed (the public-read setting, a session cookie, or a one-time ticket) and
whether there is room for it (the global and per-IP connection caps)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from monitoring import events, telemetry
from monitoring.feed.connections import ACCEPTED
from monitoring.feed.registry import get_connection_registry
from monitoring.feed.session import session_user_id
from monitoring.services.tickets import redeem_ticket

logger = logging.getLogger(__name__)
REFUSAL_REASONS = {
    events.CLOSE_UNAUTHENTICATED: "unauthenticated",
    events.CLOSE_FORBIDDEN: "forbidden",
    events.CLOSE_RECONNECT: "unavailable",
}


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
    ticket = (query.get("ticket") or [""])[0]
    if not ticket:
        return events.CLOSE_UNAUTHENTICATED
    try:
        user_id = await sync_to_async(redeem_ticket)(ticket=ticket)
    except Exception:
        # The ticket store (the cache, Redis in production) is unreachable: the ticket may still be
        # good, so the client is asked to reconnect rather than told it is refused.
        logger.warning("ticket store unavailable; asking the client to reconnect", exc_info=True)
        return events.CLOSE_RECONNECT
    if user_id is None:
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
