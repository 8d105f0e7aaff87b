"""Every API error is JSON, built by ``monitoring.errors.error_body`` (which documents the shape)."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from monitoring.errors import error_body

logger = logging.getLogger(__name__)


def json_exception_handler(exc, context):
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        if isinstance(exc, (OperationalError, InterfaceError)):
            logger.exception("database error while serving %s", context["request"].path)
            return Response(
                error_body(code="database_unavailable", detail="The database is unavailable; retry shortly."),
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
                headers={"Retry-After": "5"},
            )
        return None
    if isinstance(exc, exceptions.ValidationError):
        # Bulk requests come back from DRF keyed by the failing items' positions.
        fields = response.data if isinstance(response.data, dict) else {"non_field_errors": response.data}
        response.data = error_body(code="invalid", detail="Invalid input.", fields=fields)
    else:
        code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        response.data = error_body(code=code if isinstance(code, str) else "error", detail=str(exc.detail))
    return response


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def bad_request(request, exception=None):
    # Django answers here the requests it refuses as malformed (a Host outside ALLOWED_HOSTS, more than
    # DATA_UPLOAD_MAX_NUMBER_FIELDS parameters). The reason stays in the log: a message like the refused
    # Host's would tell a client what the server accepts.
    if not _is_api(request):
        return defaults.bad_request(request, exception)
    return JsonResponse(error_body(code="bad_request", detail="Malformed request."), status=400)


def not_found(request, exception=None):
    if not _is_api(request):
        return defaults.page_not_found(request, exception)
    return JsonResponse(error_body(code="not_found", detail="No such resource."), status=404)


def server_error(request):
    if not _is_api(request):
        return defaults.server_error(request)
    return JsonResponse(error_body(code="server_error", detail="Internal server error."), status=500)
