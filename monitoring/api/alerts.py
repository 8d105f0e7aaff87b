"""Alert and silence endpoints. Each view parses, calls one selector or service, and formats."""

from __future__ import annotations

from django.utils import timezone
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from monitoring.api.exceptions import error_body
from monitoring.api.permissions import CanReadMonitoring, ReadOrWriteMixin
from monitoring.models import Alert, Silence
from monitoring.selectors import alert_dict, isoformat, list_alerts
from monitoring.services.alerts import MAX_COMMENT, InvalidTransition, acknowledge_alert, resolve_alert
from monitoring.services.silences import SilenceInputError, create_silence, expire_silence


class AlertQuerySerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=Alert.State.choices, required=False)
    severity = serializers.ChoiceField(choices=Alert.Severity.choices, required=False)
    source = serializers.CharField(max_length=100, required=False)
    limit = serializers.IntegerField(min_value=1, max_value=500, default=100)


class CommentSerializer(serializers.Serializer):
    comment = serializers.CharField(max_length=MAX_COMMENT, allow_blank=True, default="", trim_whitespace=True)


class SilenceSerializer(serializers.Serializer):
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
    """Writes by people: a logged-in session (with CSRF), not an ingest token."""

    authentication_classes = [SessionAuthentication]
    permission_classes = [IsAuthenticated]


class AlertListView(APIView):
    permission_classes = [CanReadMonitoring]

    def get(self, request: Request) -> Response:
        query = AlertQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response({"results": [alert_dict(alert) for alert in list_alerts(**query.validated_data)]})


class AlertDetailView(APIView):
    permission_classes = [CanReadMonitoring]

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


class AlertAcknowledgeView(_TransitionView):
    transition = staticmethod(acknowledge_alert)


class AlertResolveView(_TransitionView):
    transition = staticmethod(resolve_alert)


class SilenceListCreateView(ReadOrWriteMixin, APIView):
    write_authenticator = SessionAuthentication
    write_permission = IsAuthenticated

    def get(self, request: Request) -> Response:
        silences = Silence.objects.filter(ends_at__gt=timezone.now()).select_related("created_by").order_by("ends_at")
        return Response({"results": [silence_dict(s) for s in silences]})

    def post(self, request: Request) -> Response:
        body = SilenceSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            silence = create_silence(**body.validated_data, user=request.user)
        except SilenceInputError as exc:
            raise ValidationError(exc.errors) from None
        return Response(silence_dict(silence), status=status.HTTP_201_CREATED)


class SilenceExpireView(_OperatorView):
    def post(self, request: Request, silence_id: int) -> Response:
        try:
            silence = expire_silence(silence_id=silence_id)
        except Silence.DoesNotExist:
            return Response(error_body(code="not_found", detail=f"No silence {silence_id}."), status=404)
        return Response(silence_dict(silence))
