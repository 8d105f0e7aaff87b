"""The API's OpenAPI description: the ingest-token security scheme, the common error body, the
parameters and headers several endpoints share, and the view that serves the schema.

docs/openapi.yaml is the committed copy (``make openapi`` regenerates it).
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from drf_spectacular.views import SpectacularAPIView
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from monitoring.api.authentication import FEED_CHALLENGE, OPERATOR_CHALLENGE
from monitoring.services.idempotency import MAX_KEY_LENGTH


class IngestTokenScheme(OpenApiAuthenticationExtension):
    target_class = "monitoring.api.authentication.IngestTokenAuthentication"
    name = "ingestToken"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <key>`, a key from `manage.py create_ingest_token <name>`.",
        }


class OperatorSessionScheme(OpenApiAuthenticationExtension):
    """Operator endpoints authenticate with the session (a token header only earns a clearer refusal)."""

    target_class = "monitoring.api.authentication.OperatorAuthentication"
    # The requirement names drf-spectacular's own session scheme (``cookieAuth``, registered by every view
    # that takes the session); defining it again under that name would be a second, clashing component.
    name: list[str] = []

    def get_security_requirement(self, auto_schema) -> dict:
        return {"cookieAuth": []}

    def get_security_definition(self, auto_schema) -> list:
        return []


class FeedReaderScheme(OpenApiAuthenticationExtension):
    """``POST ws-ticket``: the session (``cookieAuth``, as on operator endpoints) or a read key as a bearer token."""

    target_class = "monitoring.api.authentication.FeedReaderAuthentication"
    name = "readBearer"

    def get_security_requirement(self, auto_schema) -> list[dict]:
        return [{"cookieAuth": []}, {"readBearer": []}]

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A read key (`manage.py create_read_token <name>`, `cmr_…`); `Token <key>` works too.",
        }


class StrictRequestScheme(OpenApiSerializerExtension):
    """A request body that refuses unknown keys says so: ``additionalProperties: false``."""

    target_class = "monitoring.api.serializers.StrictSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction) -> dict:
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction == "request":
            schema["additionalProperties"] = False
        return schema


_MESSAGES = {"type": "array", "items": {"type": "string"}}


# monitoring.errors.normal_fields gives every error's "fields" this shape.
@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {"oneOf": [_MESSAGES, {"type": "object", "additionalProperties": _MESSAGES}]},
    }
)
class FieldErrorsField(serializers.DictField):
    pass


class ErrorSerializer(serializers.Serializer):
    """Every error: ``{"error": <code>, "detail": <message>[, "fields": {...}]}``."""

    error = serializers.CharField(help_text="Machine-readable code, e.g. `invalid`, `not_authenticated`.")
    detail = serializers.CharField(help_text="Human-readable message.")

    def get_fields(self) -> dict[str, serializers.Field]:
        # Declared as a class attribute, a field named "fields" would replace Serializer.fields itself.
        fields = super().get_fields()
        fields["fields"] = FieldErrorsField(
            required=False,
            help_text=(
                "Only with `invalid`: a list of messages per field, parameter or header (`Unknown field.` "
                "for a key the body may not have); for a bulk request, keyed by the failing items' "
                "positions, each such a dict."
            ),
        )
        return fields


# What each status means across the API; an endpoint may say more about its own.
ERROR_MEANINGS = {
    400: "`invalid`: a field or parameter is wrong (`fields` names it); `parse_error`: the body is not JSON.",
    401: (
        "`not_authenticated` / `authentication_failed`: missing, malformed, unknown or revoked token "
        "(`WWW-Authenticate: Token`)."
    ),
    403: (
        "`not_authenticated` without a logged-in session (an ingest token is not one); "
        "`permission_denied` on a CSRF failure."
    ),
    404: "`not_found`.",
    409: "The resource is not in a state that allows this.",
    413: "`payload_too_large`: the body exceeds `MONITORING_INGEST_MAX_BODY_BYTES` (2 MiB by default).",
    415: "`unsupported_media_type`: the body is not `application/json`.",
    422: "`idempotency_key_reused`: the `Idempotency-Key` was first used with a different request.",
    429: (
        "`throttled`: over the rate limit of the request's scope (docs/api.md, Rate limits); retry after "
        "`Retry-After` seconds."
    ),
    503: "`database_unavailable`: the database does not answer; retry after `Retry-After` seconds.",
}


# Reads: a 401 only without credentials while MONITORING_PUBLIC_READ is off, or for a bad token header.
READ_NOTES = {
    401: (
        "`not_authenticated` without credentials while `MONITORING_PUBLIC_READ` is off; "
        "`authentication_failed` for a malformed, unknown or revoked token (`WWW-Authenticate: Token`)."
    )
}
# Operator endpoints (monitoring.api.authentication.OperatorAuthentication, permissions.IsOperator).
OPERATOR_NOTES = {
    401: (
        "`not_authenticated`: no logged-in session; `authentication_failed`: an `Authorization` header that is not "
        "a valid token (an unknown scheme such as `Bearer`, or a malformed, unknown or revoked token). "
        f"`WWW-Authenticate: {OPERATOR_CHALLENGE}`."
    ),
    403: (
        "`forbidden`: authenticated but not allowed (a token, ingest or read: operator endpoints take a logged-in "
        "session); `permission_denied`: a logged-in session without its CSRF token."
    ),
}
INGEST_NOTES = {
    400: (
        f"`invalid`: a field is wrong (`fields` names it) or the `Idempotency-Key` is not 1-{MAX_KEY_LENGTH} "
        "printable characters; `parse_error`: the body is not JSON."
    ),
    403: "`forbidden`: a read token (it cannot write; ingest takes an ingest token).",
}
# POST ws-ticket (monitoring.api.authentication.FeedReaderAuthentication, permissions.CanOpenFeed).
FEED_TICKET_NOTES = {
    401: (
        "`not_authenticated`: no logged-in session and no `Authorization` header; `authentication_failed`: a "
        "malformed, unknown or revoked key, or a scheme other than `Bearer`/`Token`. "
        f"`WWW-Authenticate: {FEED_CHALLENGE}`."
    ),
    403: (
        "`forbidden`: an ingest token (the live feed takes a read token or a session); `permission_denied`: a "
        "logged-in session without its CSRF token."
    ),
}


def error_responses(
    *, statuses: tuple[int, ...], notes: dict[int, str] | None = None
) -> dict[tuple[int, str], OpenApiResponse]:
    """The error responses ``statuses`` with the common error body; ``notes`` replace a status's meaning.

    429 is always among them: every endpoint described with this is throttled (monitoring.api.throttling;
    health and readiness are not, and describe their answers themselves). Keyed by media type too: errors
    are JSON whatever else the endpoint renders (the schema endpoint).
    """
    notes = notes or {}
    return {
        (status, JSONRenderer.media_type): OpenApiResponse(
            ErrorSerializer, description=notes.get(status, ERROR_MEANINGS[status])
        )
        for status in sorted({*statuses, 429})
    }


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
    OpenApiParameter.HEADER,
    description=(
        f"1-{MAX_KEY_LENGTH} printable characters, scoped to the token: a retry with the same key and the "
        "same body gets the first successful answer again and writes nothing (docs/api.md, Idempotency)."
    ),
)
IDEMPOTENT_REPLAYED = OpenApiParameter(
    "Idempotent-Replayed",
    str,
    OpenApiParameter.HEADER,
    enum=["true"],
    description="Present when the answer is the stored one of an earlier request with the same key.",
    response=[200, 201],
)
RETRY_AFTER = OpenApiParameter("Retry-After", int, OpenApiParameter.HEADER, description="Seconds.", response=[429, 503])
WWW_AUTHENTICATE = OpenApiParameter("WWW-Authenticate", str, OpenApiParameter.HEADER, enum=["Token"], response=[401])
OPERATOR_WWW_AUTHENTICATE = OpenApiParameter(
    "WWW-Authenticate", str, OpenApiParameter.HEADER, enum=[OPERATOR_CHALLENGE], response=[401]
)
FEED_WWW_AUTHENTICATE = OpenApiParameter(
    "WWW-Authenticate", str, OpenApiParameter.HEADER, enum=[FEED_CHALLENGE], response=[401]
)


class SchemaView(SpectacularAPIView):
    """The OpenAPI schema of this API, readable by whoever may read the monitoring API."""

    @extend_schema(
        summary="The OpenAPI 3 schema of this API",
        description="YAML by default; JSON with `?format=json` or `Accept: application/json`.",
        parameters=[OpenApiParameter("format", str, enum=["json", "yaml"]), WWW_AUTHENTICATE, RETRY_AFTER],
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="The schema (docs/openapi.yaml)."),
            **error_responses(statuses=(401, 404), notes={404: "`not_found`: `format` is neither `json` nor `yaml`."}),
        },
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        # Served in one language: honouring ``?lang=`` would keep a translation catalogue in the
        # process for every distinct value a client sends.
        return self._get_schema_response(request)

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        # The schema's own renderers come first (YAML): an error would be rendered as YAML.
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response
