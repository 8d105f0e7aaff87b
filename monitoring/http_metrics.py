"""Counts, times and logs every HTTP response, outermost in the ASGI stack, so responses that never
reach Django (the body limit's 413) count too. Labels stay bounded whatever clients send: the URL pattern
that matched (``unmatched`` for anything else) and the status class.

Each request gets an id (the client's ``X-Request-ID`` when it is sane, else a new one; see
``monitoring.logs``), echoed in the response's ``X-Request-ID`` and carried by every log record emitted
while the request is handled. Once the response is sent, one access record on ``monitoring.access``:
the request id, method, URL pattern, status, duration and client address; never the query string or
other headers, which may carry secrets."""

from __future__ import annotations

import functools
import logging
import time

from django.urls import Resolver404, get_resolver

from monitoring import logs, telemetry

UNMATCHED = "unmatched"
access_log = logging.getLogger("monitoring.access")


def route_of(path: str) -> str:
    """The URL pattern ``path`` resolves to, as written in the urlconf (``api/v1/monitoring/alerts/<int:alert_id>``)."""
    # Resolving costs 15-40 us; the paths clients repeat are few and short. A bounded cache of short
    # paths keeps what hostile paths can make it hold to about 200 KB.
    return _cached_route(path) if len(path) <= 200 else _resolve(path)


def _resolve(path: str) -> str:
    try:
        return get_resolver().resolve(path).route or UNMATCHED
    except (Resolver404, UnicodeError, ValueError):
        return UNMATCHED


_cached_route = functools.lru_cache(maxsize=1024)(_resolve)


class HttpMetricsMiddleware:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        counted = False
        request_id = logs.request_id_from(scope.get("headers", ()))
        id_header = (logs.HEADER, request_id.encode("ascii"))

        def count() -> None:
            nonlocal counted
            counted = True
            seconds = time.perf_counter() - started
            route = route_of(scope["path"])
            if status:
                telemetry.HTTP_RESPONSES.labels(route=route, status=f"{status // 100}xx").inc()
                telemetry.HTTP_SECONDS.labels(route=route).observe(seconds)
            method, client = scope.get("method", ""), (scope.get("client") or (None,))[0]
            access_log.info(
                "%s %s %s %.1f ms",
                method,
                route,
                status or "-",
                seconds * 1000,
                extra={
                    "request_id": request_id,
                    "event": "http_request",
                    "method": method,
                    "route": route,
                    "status": status or None,
                    "duration_ms": round(seconds * 1000, 3),
                    "client": client,
                },
            )

        async def counting_send(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), id_header]}
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                count()

        token = logs.request_id.set(request_id)
        try:
            await self.app(scope, receive, counting_send)
        finally:
            # A response cut off midway still counts; a client that left before any answer got none (its
            # access record says so, with no status).
            if not counted:
                count()
            logs.request_id.reset(token)
