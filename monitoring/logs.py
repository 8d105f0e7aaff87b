"""Structured logs (``LOG_FORMAT=json``) and the request id every record carries.

``JsonFormatter`` writes each record as one JSON object on one line: ``time`` (ISO-8601, UTC), ``level``,
``logger``, ``message``, ``exc_info`` (the formatted traceback) when there is one, and the record's
extra fields. ``RequestIdFilter`` (on the handler, so it sees the records of every logger) adds the id
of the HTTP request or WebSocket being handled, from ``request_id``, a context variable that the
outermost HTTP middleware (``monitoring.http_metrics``) and the live-feed consumer set.

Nothing here imports Django: ``LOGGING`` names these classes before the apps are loaded.
"""

from __future__ import annotations

import json
import logging
import logging.config
import uuid
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

HEADER = b"x-request-id"
MAX_REQUEST_ID_LENGTH = 128

# The id of the request or socket whose handling emits a record; None outside one.
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

# What a LogRecord holds of its own: everything else on a record came from ``extra``.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}
# Extra fields never written: Django's ``django.request`` records carry the request object, whose text
# holds the query string.
_NEVER_WRITTEN = frozenset({"request"})


def sane_request_id(value: bytes | None) -> str | None:
    """``value`` as a request id when it is 1-128 printable ASCII characters, else None."""
    if value is None:
        return None
    value = value.strip()
    if not 0 < len(value) <= MAX_REQUEST_ID_LENGTH or not value.isascii():
        return None
    text = value.decode("ascii")
    return text if text.isprintable() else None


def request_id_from(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The client's ``X-Request-ID`` (the first one) when it is sane, else a new id (uuid4, hex)."""
    for name, value in headers:
        if name.lower() == HEADER:
            return sane_request_id(value) or uuid.uuid4().hex
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record emitted while a request or socket is handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):  # one given as ``extra`` stands
            current = request_id.get()
            if current is not None:
                record.request_id = current
        return True


def configure_json(config: dict) -> None:
    """``LOGGING_CONFIG`` with ``LOG_FORMAT=json``: ``LOGGING``, and Python's warnings (a missing static
    directory, a deprecation) through the ``py.warnings`` logger instead of as plain text on stderr."""
    logging.config.dictConfig(config)
    logging.captureWarnings(True)


def _as_text(value: Any) -> str:
    return str(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in messages and tracebacks are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        created = datetime.fromtimestamp(record.created, UTC)
        document: dict[str, Any] = {
            "time": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            document["exc_info"] = record.exc_text
        if record.stack_info:
            document["stack_info"] = self.formatStack(record.stack_info)
        extra = {
            key: value
            for key, value in vars(record).items()
            if key not in _RECORD_ATTRIBUTES and key not in _NEVER_WRITTEN and key not in document
        }
        document.update(extra)
        try:
            # ASCII only: an undecodable path's surrogates stay escapes instead of failing the write.
            return json.dumps(document, default=_as_text)
        except (TypeError, ValueError):
            # An extra that cannot be written (a circular structure): the record without its extras.
            for key in extra:
                del document[key]
            document["extra_error"] = "the record's extra fields could not be written as JSON"
            return json.dumps(document, default=_as_text)
