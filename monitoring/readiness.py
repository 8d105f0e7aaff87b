"""Readiness probes: does each backing service answer right now?

Answers name the failing part and the exception class only; host names, ports and roles in driver
messages go to the log, not to unauthenticated callers.
"""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection

from monitoring.feed.frames import is_ready_ping, ready_ping_event

CHANNEL_LAYER_TIMEOUT = 2.0
logger = logging.getLogger(__name__)


def check_database() -> str | None:
    """``None`` when the database answers, else the reason it does not."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver failure means "not ready"
        logger.warning("readiness: database check failed: %s", exc)
        return type(exc).__name__
    return None


async def _round_trip() -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel("ready.")
    await layer.send(channel, ready_ping_event())
    message = await layer.receive(channel)
    if not is_ready_ping(message):
        raise RuntimeError("channel layer returned a different message")


def check_channel_layer() -> str | None:
    """``None`` when a message makes a round trip through the channel layer, else the reason."""
    try:
        async_to_sync(asyncio.wait_for)(_round_trip(), CHANNEL_LAYER_TIMEOUT)
    except Exception as exc:  # connection refused, timeout, ...
        logger.warning("readiness: channel layer check failed: %s", exc)
        return type(exc).__name__
    return None
