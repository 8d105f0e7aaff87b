"""Every API error is JSON: ``{"error": <code>, "detail": <message>[, "fields": {...}]}``.

``fields`` has one shape whoever raised the error (a serializer, a service's ``{field: message}``, a
view): each field, parameter or header -> a list of message strings; for a list body, each failing
item's position -> such a dict.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)


def error_body(*, code: str, detail: str, fields: Mapping | None = None) -> dict:
    body: dict[str, Any] = {"error": code, "detail": detail}
    if fields is not None:
        body["fields"] = normal_fields(fields=fields)
    return body


def normal_fields(*, fields: Mapping) -> dict[str, Any]:
    """``fields`` as clients get it: name -> list of messages; for a list body, position -> that."""
    normal: dict[str, Any] = {}
    for key, value in fields.items():
        # DRF keys a list body's errors by the failing items' positions, as ints (field names are
        # strings); each item's errors are a field map of their own.
        if isinstance(key, int) and isinstance(value, Mapping):
            normal[str(key)] = {str(name): _messages(value=messages) for name, messages in value.items()}
        else:
            normal[str(key)] = _messages(value=value)
    return normal


def _messages(*, value: Any, prefix: str = "") -> list[str]:
    """Every message under ``value`` as a flat list of strings.

    Services report one bare string per field and DRF a list; a list field (``weekdays``) reports a
    dict by item position, whose messages keep the position in their text so the field's entry stays
    a list.
    """
    if isinstance(value, Mapping):
        return [
            message
            for key, nested in value.items()
            for message in _messages(value=nested, prefix=f"{prefix}{_label(key=key)}: ")
        ]
    if isinstance(value, list | tuple):
        return [message for nested in value for message in _messages(value=nested, prefix=prefix)]
    return [f"{prefix}{value}"]


def _label(*, key: Any) -> str:
    return f"Item {key}" if isinstance(key, int) else str(key)


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
