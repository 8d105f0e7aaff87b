"""``GET /metrics``: the monitor's own metrics; ``GET /metrics/pipeline``: the pipeline's numbers (both for a
Prometheus scraper, same credentials)."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import REGISTRY

from monitoring.errors import error_body
from monitoring.pipeline_metrics import render
from monitoring.selectors import pipeline_status


def _allowed(request: HttpRequest) -> bool:
    token = settings.MONITORING_METRICS_TOKEN
    if token:
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode())
    return bool(settings.MONITORING_PUBLIC_READ)


def _refused() -> HttpResponse:
    response = JsonResponse(
        error_body(code="unauthenticated", detail="Send Authorization: Bearer <MONITORING_METRICS_TOKEN>."),
        status=401,
    )
    response["WWW-Authenticate"] = "Bearer"
    return response


@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        return _refused()
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)


@require_safe
def pipeline_metrics(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        return _refused()
    now = timezone.now()
    body = render(
        document=pipeline_status(now=now), now=now, max_sources=settings.MONITORING_PIPELINE_METRICS_MAX_SOURCES
    )
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
