"""The logged-in user behind a WebSocket's session cookie, looked up only when the feed is private.

Channels' AuthMiddlewareStack resolves the session on every handshake, public feed or not (a thread
hop per connect) and keeps three middleware frames and scope copies alive for the socket's whole
life; the feed needs the user once, at connect, and only when public read is off.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from channels.auth import get_user
from django.conf import settings
from django.http.cookie import parse_cookie


def session_key(scope: dict[str, Any]) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            return parse_cookie(value.decode("latin-1")).get(settings.SESSION_COOKIE_NAME) or None
    return None


async def session_user_id(scope: dict[str, Any]) -> int | None:
    """The authenticated user's id, or ``None`` (no cookie, an expired session, a logged-out user)."""
    key = session_key(scope)
    if key is None:
        return None
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key=key)
    user = await get_user({"session": store})
    return user.pk if user.is_authenticated else None
