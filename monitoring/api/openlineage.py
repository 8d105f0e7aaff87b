"""``POST openlineage``: OpenLineage run events, as the specification's HTTP transports send them.

The reference clients post one event per request, as JSON, with ``Authorization: Bearer <api key>`` and,
when configured so, ``Content-Encoding: gzip`` (openlineage-python's
``client/python/src/openlineage/client/transport/http.py``: ``HttpTransport.emit`` and
``_prepare_request``; openlineage-java's ``client/java/src/main/java/io/openlineage/client/transports/
HttpTransport.java``). A JSON list of events is taken too, as other OpenLineage consumers take it. The
view reads the body (``monitoring.openlineage.events``), calls one service
(``monitoring.services.openlineage.apply_events``) and formats its outcomes. docs/openlineage.md.
"""

from __future__ import annotations

import io
import zlib
from collections import Counter
from typing import Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from monitoring.api.authentication import BEARER, KEYWORD, token_from_header
from monitoring.api.parsers import BoundedJSONParser, PayloadTooLarge
from monitoring.api.permissions import HasIngestToken
from monitoring.api.schema import RETRY_AFTER, error_responses
from monitoring.errors import error_body
from monitoring.models import PipelineRun
from monitoring.openlineage.events import ABORT, COMPLETE, FAIL, OTHER, RUNNING, START, InvalidEvents, read_events
from monitoring.services.openlineage import APPLIED, DUPLICATE, IGNORED, OUTCOMES, Outcome, apply_events

# Each event costs about a millisecond of schema validation: a list is bounded well below the metrics' one.
MAX_EVENTS = 1000
SCHEMES = (BEARER, KEYWORD)
EVENT_TYPES = (START, RUNNING, COMPLETE, ABORT, FAIL, OTHER)


class IngestBearerAuthentication(BaseAuthentication):
    """An ingest token as ``Authorization: Bearer <key>`` (what OpenLineage transports send) or ``Token <key>``;
    the token is ``request.auth``, as with ``IngestTokenAuthentication``."""

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in SCHEMES:
            return None
        return token_from_header(parts, expected="'Bearer <key>'")

    def authenticate_header(self, request) -> str:
        return "Bearer"


class HasIngestBearer(HasIngestToken):
    message = "An ingest token is required: 'Authorization: Bearer <key>' (or 'Token <key>')."


class IngestBearerScheme(OpenApiAuthenticationExtension):
    target_class = "monitoring.api.openlineage.IngestBearerAuthentication"
    name = "ingestBearer"

    def get_security_requirement(self, auto_schema) -> list[dict]:
        # Either header; ``ingestToken`` is defined by the other ingest endpoints' scheme.
        return [{"ingestBearer": []}, {"ingestToken": []}]

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An ingest key (`manage.py create_ingest_token <name>`), as OpenLineage transports send "
            "their `api_key`.",
        }


class OpenLineageParser(BoundedJSONParser):
    """JSON, plain or gzip-compressed; the limit applies to the JSON itself, compressed or not."""

    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        encoding = (request.META.get("HTTP_CONTENT_ENCODING", "") if request is not None else "").strip().lower()
        if encoding in ("", "identity"):
            return super().parse(stream, media_type, parser_context)
        if encoding != "gzip":
            raise UnsupportedMediaType(
                media_type, detail=f"Content-Encoding {encoding[:40]!r} is not supported: send gzip or none."
            )
        limit = settings.MONITORING_INGEST_MAX_BODY_BYTES
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            # At most one byte past the limit is inflated, so a small bomb cannot fill the memory.
            json_bytes = inflater.decompress(stream.read(limit + 1), limit + 1)
        except zlib.error as exc:
            raise ParseError(f"The body is not valid gzip: {exc}.") from None
        return super().parse(io.BytesIO(json_bytes), media_type, {})


# The request body, for the OpenAPI schema only: the shape of the specification's RunEvent (the server checks
# its whole JSON Schema). Field names are the specification's, camelCase included.
def _facets() -> serializers.DictField:
    return serializers.DictField(
        child=serializers.DictField(), required=False, help_text="Facets by name; the monitor reads a few (docs)."
    )


class OpenLineageRun(serializers.Serializer):
    runId = serializers.UUIDField()
    facets = _facets()


class OpenLineageJob(serializers.Serializer):
    namespace = serializers.CharField(allow_blank=True)
    name = serializers.CharField(allow_blank=True)
    facets = _facets()


class OpenLineageInputDataset(OpenLineageJob):
    inputFacets = _facets()


class OpenLineageOutputDataset(OpenLineageJob):
    outputFacets = _facets()


class OpenLineageRunEvent(serializers.Serializer):
    """A run event of the OpenLineage specification (https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent).

    A DatasetEvent or JobEvent (no ``run``) is taken and ignored."""

    eventType = serializers.ChoiceField(choices=EVENT_TYPES, required=False)
    eventTime = serializers.DateTimeField()
    producer = serializers.CharField(help_text="A URI.")
    schemaURL = serializers.CharField(help_text="A URI.")
    run = OpenLineageRun()
    job = OpenLineageJob()
    inputs = OpenLineageInputDataset(many=True, required=False)
    outputs = OpenLineageOutputDataset(many=True, required=False)


class OpenLineageOutcome(serializers.Serializer):
    run_id = serializers.UUIDField(allow_null=True, help_text="The event's `runId`; null for a dataset or job event.")
    event_type = serializers.ChoiceField(choices=EVENT_TYPES, allow_null=True, help_text="The event's `eventType`.")
    outcome = serializers.ChoiceField(
        choices=OUTCOMES,
        help_text="`applied`: it moved or recorded a run; `duplicate`: its transition had already happened (a "
        "retry, a late event); `ignored`: about no run the monitor follows (a job that maps to no stage, OTHER).",
    )
    pipeline_run = serializers.IntegerField(
        allow_null=True, help_text="The monitor's run (`GET runs/<id>`); null when ignored."
    )
    source = serializers.CharField(allow_null=True)
    stage = serializers.ChoiceField(choices=PipelineRun.Stage.choices, allow_null=True)
    detail = serializers.CharField(help_text="What happened, in words.")


class OpenLineageResult(serializers.Serializer):
    received = serializers.IntegerField(help_text="Events in the request.")
    applied = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    ignored = serializers.IntegerField()
    results = OpenLineageOutcome(many=True, help_text="One per event, in the order sent.")


class OpenLineageView(APIView):
    authentication_classes = [IngestBearerAuthentication]
    permission_classes = [HasIngestBearer]
    parser_classes = [OpenLineageParser]

    @extend_schema(
        summary="Take OpenLineage run events",
        description=(
            "One OpenLineage event, or a list of 1 to 1000, as the OpenLineage HTTP transports send them "
            "(`Authorization: Bearer <ingest key>`, optionally `Content-Encoding: gzip`). Each is checked "
            "against the specification's JSON Schema; a job maps to a source and stage "
            "(`MONITORING_OPENLINEAGE_JOB_MAP`, or by its name), a `runId` to one pipeline run, which START, "
            "RUNNING, COMPLETE, FAIL and ABORT move; the same transition twice is a no-op. All events are "
            "applied or none (docs/openlineage.md)."
        ),
        request=PolymorphicProxySerializer(
            component_name="OpenLineageEventOrBatch",
            serializers=[OpenLineageRunEvent, OpenLineageRunEvent(many=True, min_length=1, max_length=MAX_EVENTS)],
            resource_type_field_name=None,
            many=False,
        ),
        parameters=[
            OpenApiParameter("Content-Encoding", str, OpenApiParameter.HEADER, enum=["gzip", "identity"]),
            OpenApiParameter("WWW-Authenticate", str, OpenApiParameter.HEADER, enum=["Bearer"], response=[401]),
            RETRY_AFTER,
        ],
        responses={
            200: OpenLineageResult,
            **error_responses(
                statuses=(400, 401, 403, 413, 415, 503),
                notes={
                    400: "`invalid`: an event breaks the OpenLineage schema, or its `runId` or `eventTime` cannot be "
                    "read; `fields` names the JSON pointer of the first problem (keyed by position for a list: "
                    '`{"3": {"/run/runId": ["..."]}}`). `parse_error`: the body is not JSON.',
                    401: "`not_authenticated` / `authentication_failed`: missing, malformed, unknown or revoked "
                    "ingest key (`WWW-Authenticate: Bearer`).",
                    403: "`forbidden`: a read key (it cannot write; events take an ingest key).",
                    413: "`payload_too_large`: the body (uncompressed) exceeds `MONITORING_INGEST_MAX_BODY_BYTES` "
                    "(2 MiB), or the list holds more than 1000 events.",
                    415: "`unsupported_media_type`: not `application/json`, or a `Content-Encoding` other than gzip.",
                },
            ),
        },
    )
    def post(self, request: Request) -> Response:
        body = request.data
        if isinstance(body, list) and len(body) > MAX_EVENTS:
            raise PayloadTooLarge(f"At most {MAX_EVENTS} events per request; got {len(body)}.")
        try:
            events = read_events(body, now=timezone.now())
        except InvalidEvents as exc:
            return Response(
                error_body(code="invalid", detail=f"Invalid OpenLineage event: {exc}", fields=_fields(exc)),
                status=status.HTTP_400_BAD_REQUEST,
            )
        return Response(_document(apply_events(events=events)))


def _fields(exc: InvalidEvents) -> dict:
    def by_pointer(pointer: str, message: str) -> dict[str, list[str]]:
        return {pointer or "non_field_errors": [message]}

    if list(exc.errors) == [None]:
        error = exc.errors[None]
        return by_pointer(error.pointer, error.message)
    return {index: by_pointer(error.pointer, error.message) for index, error in exc.errors.items()}


def _document(outcomes: list[Outcome]) -> dict[str, Any]:
    counts = Counter(outcome.outcome for outcome in outcomes)
    return {
        "received": len(outcomes),
        "applied": counts[APPLIED],
        "duplicates": counts[DUPLICATE],
        "ignored": counts[IGNORED],
        "results": [
            {
                "run_id": None if outcome.run_id is None else str(outcome.run_id),
                "event_type": outcome.event_type,
                "outcome": outcome.outcome,
                "pipeline_run": outcome.pipeline_run,
                "source": outcome.source,
                "stage": outcome.stage,
                "detail": outcome.detail,
            }
            for outcome in outcomes
        ],
    }
