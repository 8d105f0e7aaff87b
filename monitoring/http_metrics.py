"""Counts and times every HTTP response, outermost in the ASGI stack, so responses that never reach
Django (the body limit's 413) count too. Labels stay bounded whatever clients send: the URL pattern
that matched (``unmatched`` for anything else) and the status class."""

from __future__ import annotations

import functools
import time

from django.urls import Resolver404, get_resolver

from monitoring import telemetry

UNMATCHED = "unmatched"


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

        def count() -> None:
            nonlocal counted
            counted = True
            route = route_of(scope["path"])
            telemetry.HTTP_RESPONSES.labels(route=route, status=f"{status // 100}xx").inc()
            telemetry.HTTP_SECONDS.labels(route=route).observe(time.perf_counter() - started)

        async def counting_send(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                count()

        try:
            await self.app(scope, receive, counting_send)
        finally:
            # A response cut off midway still counts; a client that left before any answer got none.
            if status and not counted:
                count()
