"""Readiness probes: does each backing service answer right now?"""

from __future__ import annotations

import asyncio

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection

CHANNEL_LAYER_TIMEOUT = 2.0


def check_database() -> str | None:
    """``None`` when the database answers, else the reason it does not."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver failure means "not ready"
        return f"{type(exc).__name__}: {exc}"
    return None


async def _round_trip() -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel("ready.")
    await layer.send(channel, {"type": "ready.ping"})
    message = await layer.receive(channel)
    if message.get("type") != "ready.ping":
        raise RuntimeError("channel layer returned a different message")


def check_channel_layer() -> str | None:
    """``None`` when a message makes a round trip through the channel layer, else the reason."""
    try:
        async_to_sync(asyncio.wait_for)(_round_trip(), CHANNEL_LAYER_TIMEOUT)
    except Exception as exc:  # connection refused, timeout, ...
        return f"{type(exc).__name__}: {exc}"
    return None
