"""The dashboard page: an HTML shell and its configuration. Every number on it comes from the API and the
live feed, so the page shows exactly what any other client sees."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_safe

from monitoring.routing import websocket_urlpatterns

logger = logging.getLogger(__name__)


def _signed_in_username(request: HttpRequest) -> str | None:
    """The signed-in user's name, or ``None``. Sessions live in the database: while it is down the
    page still loads, signed out, and its status panel reports the outage from the API's 503."""
    try:
        user = request.user
        return user.get_username() if user.is_authenticated else None
    except DatabaseError:
        logger.warning("database unavailable; serving the dashboard signed out", exc_info=True)
        return None


def dashboard_config(request: HttpRequest) -> dict[str, Any]:
    username = _signed_in_username(request)
    return {
        # Empty: the page derives ws:/wss: and the host from its own address.
        "wsBaseUrl": settings.DASHBOARD_WS_BASE_URL or "",
        "wsPath": "/" + str(websocket_urlpatterns[0].pattern),
        "statusUrl": reverse("pipeline-status"),
        "trendsUrl": reverse("trends"),
        "alertsUrl": reverse("alerts"),
        "ticketUrl": reverse("ws-ticket"),
        "broadcastInterval": settings.WEBSOCKET_BROADCAST_INTERVAL,
        # The status topic is published every interval, so two silent intervals mean a dead socket.
        "heartbeatTimeout": 2 * settings.WEBSOCKET_BROADCAST_INTERVAL,
        "pollInterval": settings.DASHBOARD_POLL_INTERVAL,
        "publicRead": settings.MONITORING_PUBLIC_READ,
        "csrfCookieName": settings.CSRF_COOKIE_NAME,
        "user": {"authenticated": username is not None, "username": username or ""},
        "loginUrl": f"{reverse('admin:login')}?next={reverse('dashboard')}",
        "logoutUrl": reverse("admin:logout"),
    }


@require_safe
@ensure_csrf_cookie
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "monitoring/dashboard.html", {"config": dashboard_config(request)})
