"""Early pushes for rows written behind the service's back (PostgreSQL ``LISTEN``).

The derived-table triggers (monitoring/triggers.py) send ``NOTIFY monitoring_data_changed`` from every
statement that writes metrics or runs, whoever runs it. PostgreSQL delivers a notification only when
its transaction commits, and one per transaction however many statements sent it, so a listener hears
each committed write once. The broadcaster listens and pushes early, as it does for ingest's own hints;
without a listener (SQLite, or the connection lost) the next tick shows the write all the same.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from django.db import connections

from monitoring.triggers import NOTIFY_CHANNEL

logger = logging.getLogger(__name__)

RETRY_SECONDS = 1.0
# Keys of Django's connection parameters that are psycopg's Python-side settings, not libpq's.
_NOT_LIBPQ = ("cursor_factory", "context", "prepare_threshold")


def listen_supported(alias: str = "default") -> bool:
    return connections[alias].vendor == "postgresql"


def _conninfo(alias: str) -> dict[str, Any]:
    params = connections[alias].get_connection_params()
    return {key: value for key, value in params.items() if key not in _NOT_LIBPQ}


async def listen_for_changes(*, on_change: Callable[[], None], alias: str = "default") -> None:
    """Call ``on_change`` for every committed write of metrics or runs, until cancelled; reconnects."""
    import psycopg

    params = _conninfo(alias)
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(autocommit=True, **params) as conn:
                await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                async for _ in conn.notifies():
                    on_change()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.warning("database change listener lost; reconnecting in %.0f s", RETRY_SECONDS, exc_info=True)
        await asyncio.sleep(RETRY_SECONDS)
