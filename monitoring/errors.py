"""The one HTTP error body: ``{"error": <code>, "detail": <message>[, "fields": {...}]}``.

Built here for the API's exception handler, the request-body limit, the metrics endpoint and
daphne's own error pages on API paths, so every 4xx/5xx a client sees has one shape. No Django
imports: the server override uses it before apps load.

``fields`` has one shape whoever raised the error (a serializer, a service's ``{field: message}``, a
view): each field, parameter or header -> a list of message strings; for a list body, each failing
item's position -> such a dict.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


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


def error_json(*, code: str, detail: str) -> bytes:
    """The body serialised, for responses written without Django (ASGI middleware, the server)."""
    return json.dumps(error_body(code=code, detail=detail)).encode()
