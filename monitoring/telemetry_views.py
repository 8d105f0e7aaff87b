"""``GET /metrics``: the monitor's own metrics for a Prometheus scraper."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import REGISTRY

from monitoring.errors import error_body


def _allowed(request: HttpRequest) -> bool:
    token = settings.MONITORING_METRICS_TOKEN
    if token:
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode())
    return bool(settings.MONITORING_PUBLIC_READ)


@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        response = JsonResponse(
            error_body(code="unauthenticated", detail="Send Authorization: Bearer <MONITORING_METRICS_TOKEN>."),
            status=401,
        )
        response["WWW-Authenticate"] = "Bearer"
        return response
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
