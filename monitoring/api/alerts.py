"""Alert and silence endpoints. Each view parses, calls one selector or service, and formats."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from monitoring.api import paging
from monitoring.api.authentication import OperatorAuthentication
from monitoring.api.documents import AlertDetail, AlertList, AlertTransition, SilenceDocument, SilenceList
from monitoring.api.paging import CursorField
from monitoring.api.permissions import CanReadMonitoring, IsOperator, ReadOrWriteMixin
from monitoring.api.schema import (
    OPERATOR_NOTES,
    OPERATOR_WWW_AUTHENTICATE,
    READ_NOTES,
    RETRY_AFTER,
    WWW_AUTHENTICATE,
    error_responses,
)
from monitoring.api.serializers import QuerySerializer, StrictSerializer
from monitoring.errors import error_body
from monitoring.models import Alert, Silence
from monitoring.selectors import alert_dict, isoformat, list_alerts
from monitoring.services.alerts import MAX_COMMENT, InvalidTransition, acknowledge_alert, resolve_alert
from monitoring.services.silences import SilenceInputError, create_silence, expire_silence


class AlertQuerySerializer(QuerySerializer):
    state = serializers.ChoiceField(choices=Alert.State.choices, required=False)
    severity = serializers.ChoiceField(choices=Alert.Severity.choices, required=False)
    source = serializers.CharField(max_length=100, required=False)
    limit = serializers.IntegerField(min_value=1, max_value=500, default=100)
    cursor = CursorField(help_text="The `next` of the previous page.")


class CommentSerializer(StrictSerializer):
    comment = serializers.CharField(max_length=MAX_COMMENT, allow_blank=True, default="", trim_whitespace=True)


class SilenceSerializer(StrictSerializer):
    rule_name = serializers.CharField(max_length=100, allow_blank=True, default="")
    source = serializers.CharField(max_length=100, allow_blank=True, default="")
    starts_at = serializers.DateTimeField(required=False)
    ends_at = serializers.DateTimeField()
    weekdays = serializers.ListField(child=serializers.IntegerField(min_value=0, max_value=6), required=False)
    daily_start = serializers.TimeField(required=False)
    duration_minutes = serializers.IntegerField(min_value=1, max_value=7 * 24 * 60, required=False)
    reason = serializers.CharField(max_length=2000)


def silence_dict(silence: Silence) -> dict:
    now = timezone.now()
    return {
        "id": silence.pk,
        "rule_name": silence.rule_name or None,
        "source": silence.source or None,
        "starts_at": isoformat(silence.starts_at),
        "ends_at": isoformat(silence.ends_at),
        "weekdays": sorted(silence.weekday_set()),
        "daily_start": silence.daily_start.isoformat() if silence.daily_start else None,
        "duration_minutes": silence.duration_minutes,
        "reason": silence.reason,
        "created_by": silence.created_by.get_username() if silence.created_by else None,
        "active_now": silence.is_active(now),
    }


class _OperatorView(APIView):
    """Writes by people: a logged-in session (with CSRF), not an ingest token (401 without one, 403 for a token)."""

    authentication_classes = [OperatorAuthentication]
    permission_classes = [IsOperator]


class AlertListView(APIView):
    permission_classes = [CanReadMonitoring]

    @extend_schema(
        summary="Alerts, newest first",
        description="Filters combine. Reads follow `MONITORING_PUBLIC_READ`, as for the pipeline status.",
        operation_id="alerts_list",
        parameters=[AlertQuerySerializer, WWW_AUTHENTICATE, RETRY_AFTER],
        responses={200: AlertList, **error_responses(statuses=(400, 401, 503), notes=READ_NOTES)},
    )
    def get(self, request: Request) -> Response:
        query = AlertQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        page = list_alerts(**query.validated_data)
        return Response({"results": [alert_dict(alert) for alert in page.rows], "next": paging.encode(page.next)})


class AlertDetailView(APIView):
    permission_classes = [CanReadMonitoring]

    @extend_schema(
        summary="One alert with its audit trail",
        description="Reads follow `MONITORING_PUBLIC_READ`, as for the pipeline status.",
        parameters=[WWW_AUTHENTICATE, RETRY_AFTER],
        responses={
            200: AlertDetail,
            **error_responses(
                statuses=(401, 404, 503), notes={**READ_NOTES, 404: "`not_found`: no alert with this id."}
            ),
        },
    )
    def get(self, request: Request, alert_id: int) -> Response:
        alert = Alert.objects.select_related("acknowledged_by", "resolved_by").filter(pk=alert_id).first()
        if alert is None:
            return Response(error_body(code="not_found", detail=f"No alert {alert_id}."), status=404)
        events = [
            {
                "at": isoformat(e.at),
                "kind": e.kind,
                "from_state": e.from_state or None,
                "to_state": e.to_state or None,
                "actor": e.actor.get_username() if e.actor else None,
                "comment": e.comment,
                "details": e.details,
            }
            for e in alert.events.select_related("actor")
        ]
        return Response({**alert_dict(alert), "events": events})


class _TransitionView(_OperatorView):
    transition = None  # set by subclasses

    @extend_schema(
        description="Logged-in session with CSRF. Repeating a transition changes nothing (`changed`: false).",
        request=CommentSerializer,
        parameters=[OPERATOR_WWW_AUTHENTICATE, RETRY_AFTER],
        responses={
            200: AlertTransition,
            **error_responses(
                statuses=(400, 401, 403, 404, 409, 413, 415, 503),
                notes={
                    **OPERATOR_NOTES,
                    404: "`not_found`: no alert with this id.",
                    409: "`invalid_transition`: e.g. acknowledging a resolved alert.",
                },
            ),
        },
    )
    def post(self, request: Request, alert_id: int) -> Response:
        body = CommentSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            alert, changed = self.transition(
                alert_id=alert_id, user=request.user, comment=body.validated_data["comment"]
            )
        except Alert.DoesNotExist:
            return Response(error_body(code="not_found", detail=f"No alert {alert_id}."), status=404)
        except InvalidTransition as exc:
            return Response(error_body(code="invalid_transition", detail=str(exc)), status=status.HTTP_409_CONFLICT)
        return Response({**alert_dict(alert), "changed": changed})


@extend_schema_view(post=extend_schema(summary="Acknowledge an alert"))
class AlertAcknowledgeView(_TransitionView):
    transition = staticmethod(acknowledge_alert)


@extend_schema_view(post=extend_schema(summary="Resolve an alert"))
class AlertResolveView(_TransitionView):
    transition = staticmethod(resolve_alert)


class SilenceListCreateView(ReadOrWriteMixin, APIView):
    write_authenticator = OperatorAuthentication
    write_permission = IsOperator

    @extend_schema(
        summary="Silences that have not ended",
        description="Soonest end first. Reads follow `MONITORING_PUBLIC_READ`, as for the pipeline status.",
        operation_id="silences_list",
        parameters=[WWW_AUTHENTICATE, RETRY_AFTER],
        responses={200: SilenceList, **error_responses(statuses=(401, 503), notes=READ_NOTES)},
    )
    def get(self, request: Request) -> Response:
        silences = Silence.objects.filter(ends_at__gt=timezone.now()).select_related("created_by").order_by("ends_at")
        return Response({"results": [silence_dict(s) for s in silences]})

    @extend_schema(
        summary="Create a silence",
        description=(
            "Logged-in session with CSRF. Notifications for matching alerts stop while it is active; "
            "`weekdays` with `daily_start` and `duration_minutes` make it a weekly window (docs/alerts.md)."
        ),
        request=SilenceSerializer,
        parameters=[OPERATOR_WWW_AUTHENTICATE, RETRY_AFTER],
        responses={
            201: SilenceDocument,
            **error_responses(
                statuses=(400, 401, 403, 413, 415, 503),
                notes={
                    **OPERATOR_NOTES,
                    400: (
                        "`invalid`: a field is wrong (`fields` names it): e.g. an unknown `rule_name` or `source`, "
                        "or an `ends_at` already past; `parse_error`: the body is not JSON."
                    ),
                },
            ),
        },
    )
    def post(self, request: Request) -> Response:
        body = SilenceSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            silence = create_silence(**body.validated_data, user=request.user)
        except SilenceInputError as exc:
            raise ValidationError(exc.errors) from None
        return Response(silence_dict(silence), status=status.HTTP_201_CREATED)


class SilenceExpireView(_OperatorView):
    @extend_schema(
        summary="End a silence now",
        description="Logged-in session with CSRF. The silence stays on record; ending an ended one changes nothing.",
        request=None,
        parameters=[OPERATOR_WWW_AUTHENTICATE, RETRY_AFTER],
        responses={
            200: SilenceDocument,
            **error_responses(
                statuses=(401, 403, 404, 413, 503),
                notes={**OPERATOR_NOTES, 404: "`not_found`: no silence with this id."},
            ),
        },
    )
    def post(self, request: Request, silence_id: int) -> Response:
        try:
            silence = expire_silence(silence_id=silence_id)
        except Silence.DoesNotExist:
            return Response(error_body(code="not_found", detail=f"No silence {silence_id}."), status=404)
        return Response(silence_dict(silence))
