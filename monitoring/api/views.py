"""HTTP endpoints. Each view parses, calls one selector or service, and formats."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from monitoring import readiness
from monitoring.api import paging
from monitoring.api.authentication import FeedReaderAuthentication, IngestTokenAuthentication
from monitoring.api.documents import (
    HealthDocument,
    MetricsCreated,
    ReadinessDocument,
    RunList,
    StatusDocument,
    WebSocketTicket,
)
from monitoring.api.parsers import PayloadTooLarge
from monitoring.api.permissions import CanOpenFeed, CanReadMonitoring, HasIngestToken, ReadOrWriteMixin
from monitoring.api.schema import (
    FEED_TICKET_NOTES,
    FEED_WWW_AUTHENTICATE,
    IDEMPOTENCY_KEY,
    IDEMPOTENT_REPLAYED,
    INGEST_NOTES,
    READ_NOTES,
    RETRY_AFTER,
    WWW_AUTHENTICATE,
    error_responses,
)
from monitoring.api.serializers import (
    MetricSerializer,
    PipelineRunSerializer,
    RunCreateSerializer,
    RunFinishSerializer,
    RunQuerySerializer,
    StatusQuerySerializer,
    validate_metrics,
)
from monitoring.errors import error_body
from monitoring.models import PipelineRun
from monitoring.selectors import list_runs, pipeline_status
from monitoring.services.idempotency import (
    MAX_KEY_LENGTH,
    IdempotencyKeyReused,
    request_fingerprint,
    run_idempotent,
)
from monitoring.services.metrics import MetricLinkError, record_metrics
from monitoring.services.runs import RunAlreadyFinished, RunInputError, finish_run, record_run
from monitoring.services.tickets import issue_ticket


def _respond_idempotently(
    request: Request, action: Callable[[], tuple[int, Any]], *, validated: Callable[[], Any]
) -> Response:
    """Run ``action`` under the request's ``Idempotency-Key``, if it carries one.

    ``validated`` returns the parsed input the fingerprint is taken from, so equivalent JSON matches;
    it is called only for a request with a key (for a 5000-metric batch it costs ~15 % of the request).
    """
    key = request.headers.get("Idempotency-Key")
    if key is None:
        result_status, body = action()
        return Response(body, status=result_status)
    if not 0 < len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise ValidationError({"Idempotency-Key": f"1-{MAX_KEY_LENGTH} printable characters."})
    fingerprint = request_fingerprint(method=request.method, path=request.path, data=validated())
    try:
        result = run_idempotent(
            token=request.auth,
            key=key,
            fingerprint=fingerprint,
            action=action,
            ttl_hours=settings.MONITORING_IDEMPOTENCY_TTL_HOURS,
        )
    except IdempotencyKeyReused as exc:
        return Response(
            error_body(code="idempotency_key_reused", detail=str(exc)), status=status.HTTP_422_UNPROCESSABLE_ENTITY
        )
    response = Response(result.body, status=result.status)
    if result.replayed:
        response["Idempotent-Replayed"] = "true"
    return response


class PipelineStatusView(APIView):
    permission_classes = [CanReadMonitoring]

    @extend_schema(
        summary="The pipeline status document",
        description=(
            "Scraping health and data quality over a trailing window, the current anomalies and the active "
            "alerts (docs/status.md). An empty database is a 200 with `no_data`."
        ),
        parameters=[StatusQuerySerializer, WWW_AUTHENTICATE, RETRY_AFTER],
        responses={200: StatusDocument, **error_responses(statuses=(400, 401, 503), notes=READ_NOTES)},
    )
    def get(self, request: Request) -> Response:
        query = StatusQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(pipeline_status(window_hours=query.validated_data.get("window_hours")))


class HealthView(APIView):
    """The process is alive and serving requests."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []  # load balancers poll it

    @extend_schema(summary="Liveness", auth=[], responses={200: HealthDocument})
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


class ReadyView(APIView):
    """Ready when the database and the channel layer both answer."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []  # load balancers poll it

    @extend_schema(
        summary="Readiness",
        auth=[],
        responses={
            200: ReadinessDocument,
            503: OpenApiResponse(ReadinessDocument, description="Not ready; `errors` says why."),
        },
    )
    def get(self, request: Request) -> Response:
        checks = {"database": readiness.check_database(), "channel_layer": readiness.check_channel_layer()}
        failed = {name: reason for name, reason in checks.items() if reason is not None}
        body = {
            "status": "not_ready" if failed else "ready",
            "checks": {name: ("failed" if name in failed else "ok") for name in checks},
        }
        if failed:
            body["errors"] = failed
            return Response(body, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response(body)


class WebSocketTicketView(APIView):
    """A single-use ticket for opening the live feed, valid ``WEBSOCKET_TICKET_TTL`` seconds."""

    authentication_classes = [FeedReaderAuthentication]
    permission_classes = [CanOpenFeed]

    @extend_schema(
        summary="A single-use ticket for the live feed",
        description=(
            "A logged-in session with CSRF, or a read token (`Authorization: Bearer <read key>`); an ingest token "
            "is refused (docs/protocol.md, Auth)."
        ),
        request=None,
        parameters=[FEED_WWW_AUTHENTICATE, RETRY_AFTER],
        responses={
            201: WebSocketTicket,
            **error_responses(statuses=(401, 403, 413, 503), notes=FEED_TICKET_NOTES),
        },
    )
    def post(self, request: Request) -> Response:
        if request.user.is_authenticated:
            ticket = issue_ticket(user_id=request.user.pk)
        else:
            ticket = issue_ticket(token_id=request.auth.pk)
        return Response({"ticket": ticket, "expires_in": settings.WEBSOCKET_TICKET_TTL}, status=status.HTTP_201_CREATED)


class MetricIngestView(APIView):
    authentication_classes = [IngestTokenAuthentication]
    permission_classes = [HasIngestToken]

    @extend_schema(
        summary="Store data-quality metrics",
        description=(
            "One metric or a list of 1 to `MONITORING_INGEST_MAX_BATCH` (5000) metrics, stored all or nothing. "
            "`geocoding_successes` cannot exceed `geocoding_attempts`, nor `validation_passes` "
            "`validation_attempts`; `timestamp` (default now) lies at most 5 minutes in the future. "
            "`run_id` names an existing run of the same source; `stage`, when given with it, is the run's "
            "(without it, the run's stage is stored)."
        ),
        request=PolymorphicProxySerializer(
            component_name="MetricOrBatch",
            serializers=[MetricSerializer, MetricSerializer(many=True, min_length=1)],
            resource_type_field_name=None,
            many=False,
        ),
        parameters=[IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED, WWW_AUTHENTICATE, RETRY_AFTER],
        responses={
            201: MetricsCreated,
            **error_responses(
                statuses=(400, 401, 403, 413, 415, 422, 503),
                notes={
                    **INGEST_NOTES,
                    413: "`payload_too_large`: the body exceeds `MONITORING_INGEST_MAX_BODY_BYTES` (2 MiB), or "
                    "the list holds more than `MONITORING_INGEST_MAX_BATCH` (5000) metrics.",
                },
            ),
        },
    )
    def post(self, request: Request) -> Response:
        data = request.data
        many = isinstance(data, list)
        limit = settings.MONITORING_INGEST_MAX_BATCH
        if many and len(data) > limit:
            raise PayloadTooLarge(f"At most {limit} metrics per request; got {len(data)}.")
        if many and not data:
            raise ValidationError({"non_field_errors": ["Expected at least one metric."]})
        metrics = validate_metrics(data, many=many)

        def action() -> tuple[int, Any]:
            try:
                created = record_metrics(metrics=metrics)
            except MetricLinkError as exc:
                # Keyed by position for a list body, as the serializer's own errors are.
                raise ValidationError(exc.errors if many else exc.errors[0]) from None
            return status.HTTP_201_CREATED, {"created": len(created), "ids": [row.pk for row in created]}

        return _respond_idempotently(request, action, validated=lambda: [metric.as_dict() for metric in metrics])


class RunListCreateView(ReadOrWriteMixin, APIView):
    write_authenticator = IngestTokenAuthentication
    write_permission = HasIngestToken

    @extend_schema(
        summary="Pipeline runs, newest first",
        description="Filters combine. Reads follow `MONITORING_PUBLIC_READ`, as for the pipeline status.",
        operation_id="runs_list",
        parameters=[RunQuerySerializer, WWW_AUTHENTICATE, RETRY_AFTER],
        responses={200: RunList, **error_responses(statuses=(400, 401, 503), notes=READ_NOTES)},
    )
    def get(self, request: Request) -> Response:
        query = RunQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        page = list_runs(**query.validated_data)
        return Response({"results": PipelineRunSerializer(page.rows, many=True).data, "next": paging.encode(page.next)})

    @extend_schema(
        summary="Record a pipeline run",
        description=(
            "A run that has started (`running`), or one that already finished (`finished_at` defaults to now). "
            "Times at most 5 minutes in the future; a finished run cannot finish before it started."
        ),
        request=RunCreateSerializer,
        parameters=[IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED, WWW_AUTHENTICATE, RETRY_AFTER],
        responses={
            201: PipelineRunSerializer,
            **error_responses(statuses=(400, 401, 403, 413, 415, 422, 503), notes=INGEST_NOTES),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = RunCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)

        def action() -> tuple[int, Any]:
            try:
                run = record_run(**serializer.validated_data)
            except RunInputError as exc:
                raise ValidationError(exc.errors) from None
            return status.HTTP_201_CREATED, PipelineRunSerializer(run).data

        return _respond_idempotently(request, action, validated=lambda: serializer.validated_data)


class RunDetailView(APIView):
    @extend_schema(
        summary="One pipeline run",
        description="Reads follow `MONITORING_PUBLIC_READ`, as for the pipeline status.",
        operation_id="runs_retrieve",
        parameters=[WWW_AUTHENTICATE, RETRY_AFTER],
        responses={
            200: PipelineRunSerializer,
            **error_responses(statuses=(401, 404, 503), notes={**READ_NOTES, 404: "`not_found`: no run with this id."}),
        },
    )
    def get(self, request: Request, run_id: int) -> Response:
        run = PipelineRun.objects.filter(pk=run_id).first()
        if run is None:
            return Response(error_body(code="not_found", detail=f"No run {run_id}."), status=status.HTTP_404_NOT_FOUND)
        return Response(PipelineRunSerializer(run).data)


class RunFinishView(APIView):
    authentication_classes = [IngestTokenAuthentication]
    permission_classes = [HasIngestToken]

    @extend_schema(
        summary="Finish a running pipeline run",
        description="Times at most 5 minutes in the future, and not before the run started.",
        request=RunFinishSerializer,
        parameters=[IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED, WWW_AUTHENTICATE, RETRY_AFTER],
        responses={
            200: PipelineRunSerializer,
            **error_responses(
                statuses=(400, 401, 403, 404, 409, 413, 415, 422, 503),
                notes={
                    **INGEST_NOTES,
                    404: "`not_found`: no run with this id.",
                    409: "`run_already_finished`: the run is not running.",
                },
            ),
        },
    )
    def post(self, request: Request, run_id: int) -> Response:
        serializer = RunFinishSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)

        def action() -> tuple[int, Any]:
            try:
                run = finish_run(run_id=run_id, **serializer.validated_data)
            except PipelineRun.DoesNotExist:
                return status.HTTP_404_NOT_FOUND, error_body(code="not_found", detail=f"No run {run_id}.")
            except RunAlreadyFinished as exc:
                return status.HTTP_409_CONFLICT, error_body(code="run_already_finished", detail=str(exc))
            except RunInputError as exc:
                raise ValidationError(exc.errors) from None
            return status.HTTP_200_OK, PipelineRunSerializer(run).data

        return _respond_idempotently(request, action, validated=lambda: serializer.validated_data)
