"""The WebSocket access log: one record when a socket is served and one when it ends, as
``monitoring.http_metrics`` writes per request, carrying the socket's id (``monitoring.logs``)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from monitoring import logs

access_log = logging.getLogger("monitoring.access")


def _client(scope: dict[str, Any]) -> str | None:
    return (scope.get("client") or (None,))[0]


def log_open(scope: dict[str, Any]) -> None:
    path = scope.get("path", "")
    access_log.info(
        "websocket open %s",
        path,
        extra={"request_id": logs.request_id.get(), "event": "websocket_open", "path": path, "client": _client(scope)},
    )


def log_close(scope: dict[str, Any], *, socket_id: str, code: int | None, started: float) -> None:
    path = scope.get("path", "")
    duration_ms = round((time.monotonic() - started) * 1000, 3)
    access_log.info(
        "websocket close %s code %s after %.0f ms",
        path,
        code,
        duration_ms,
        extra={
            "request_id": socket_id,
            "event": "websocket_close",
            "path": path,
            "code": code,
            "duration_ms": duration_ms,
            "client": _client(scope),
        },
    )


@asynccontextmanager
async def socket_logged(scope: dict[str, Any], *, code: Callable[[], int | None]) -> AsyncIterator[None]:
    """The socket's id on every record logged inside (``monitoring.logs``), and its close record after,
    with the code ``code()`` returns then."""
    socket_id = logs.request_id_from(scope.get("headers", ()))
    token = logs.request_id.set(socket_id)
    started = time.monotonic()
    try:
        yield
    finally:
        log_close(scope, socket_id=socket_id, code=code(), started=started)
        logs.request_id.reset(token)
