"""``GET trends``: bucketed rate and volume series with their change versus the previous period."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from monitoring.api.documents import TrendsDocument
from monitoring.api.permissions import CanReadMonitoring
from monitoring.api.schema import READ_NOTES, RETRY_AFTER, WWW_AUTHENTICATE, error_responses
from monitoring.api.serializers import QuerySerializer, SourceNameField
from monitoring.services.metrics import SOURCE_PATTERN
from monitoring.trends import (
    BUCKET_HOURS,
    DEFAULT_WINDOW_HOURS,
    HOUR,
    MAX_WINDOW_HOURS,
    METRICS,
    MIN_WINDOW_HOURS,
    STAGE_FILTERS,
    trends,
)


class MetricListField(serializers.ListField):
    """``metric`` repeated (``?metric=a&metric=b``), comma-separated (``?metric=a,b``), or both."""

    child = serializers.CharField(allow_blank=True, trim_whitespace=False)

    def to_internal_value(self, data: Any) -> list[str]:
        # ``?metric=`` alone counts as omitted, as an empty value of any other parameter does (DRF forms).
        values = [value for value in super().to_internal_value(data) if value != ""]
        names = [name for value in values for name in value.split(",")]
        if any(not name for name in names):
            raise serializers.ValidationError("Empty metric name in a comma-separated list.")
        unknown = sorted({name for name in names if name not in METRICS})
        if unknown:
            raise serializers.ValidationError(f"Unknown metric {', '.join(unknown)}; choose from {', '.join(METRICS)}.")
        return list(dict.fromkeys(names))


class TrendsQuerySerializer(QuerySerializer):
    metric = MetricListField(source="metrics", required=False)
    source = SourceNameField(required=False, trim_whitespace=False)
    stage = serializers.ChoiceField(
        choices=list(STAGE_FILTERS),
        required=False,
        help_text="Only the metrics of this stage; `unstaged`: those reported without one. Omitted: all.",
    )
    bucket = serializers.ChoiceField(choices=list(BUCKET_HOURS), default=HOUR)
    window_hours = serializers.IntegerField(min_value=MIN_WINDOW_HOURS, max_value=MAX_WINDOW_HOURS, required=False)
    # The name this endpoint used before ``window_hours`` became the one name across endpoints.
    window = serializers.IntegerField(
        source="window_alias",
        min_value=MIN_WINDOW_HOURS,
        max_value=MAX_WINDOW_HOURS,
        required=False,
        help_text="Deprecated: use `window_hours`.",
    )

    def validate_source(self, value: str) -> str:
        if not SOURCE_PATTERN.fullmatch(value):
            raise serializers.ValidationError(
                "1-100 characters: letters, digits, '_', '.', ':', '-' (starting with a letter or digit)."
            )
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        bucket = attrs["bucket"]
        if "window_hours" in attrs and "window_alias" in attrs:
            raise serializers.ValidationError({"window": ["Give window_hours only (window is its deprecated name)."]})
        window_hours = attrs.get("window_hours", attrs.get("window_alias", DEFAULT_WINDOW_HOURS[bucket]))
        step = BUCKET_HOURS[bucket]
        if window_hours % step:
            given = "window" if "window_alias" in attrs else "window_hours"  # the name the caller used
            raise serializers.ValidationError({given: [f"Must be a multiple of {step} hours with {bucket} buckets."]})
        return {
            "metrics": attrs.get("metrics") or list(METRICS),
            "source": attrs.get("source"),
            "stage": attrs.get("stage"),
            "bucket": bucket,
            "window_hours": window_hours,
        }


class TrendsView(APIView):
    permission_classes = [CanReadMonitoring]

    @extend_schema(
        summary="Bucketed rate and volume series with their change versus the previous period",
        description="docs/trends.md. Reads follow `MONITORING_PUBLIC_READ`, as for the pipeline status.",
        parameters=[TrendsQuerySerializer, WWW_AUTHENTICATE, RETRY_AFTER],
        responses={200: TrendsDocument, **error_responses(statuses=(400, 401, 503), notes=READ_NOTES)},
    )
    def get(self, request: Request) -> Response:
        query = TrendsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(trends(now=timezone.now(), **query.validated_data))
