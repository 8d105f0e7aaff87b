from __future__ import annotations

from rest_framework import serializers

from monitoring.models import PipelineRun
from monitoring.selectors import MAX_WINDOW_HOURS, MIN_WINDOW_HOURS
from monitoring.services.metrics import MAX_COUNT, MetricInput, MetricInputError
from monitoring.services.runs import MAX_ERROR_CHARS


class StatusQuerySerializer(serializers.Serializer):
    window_hours = serializers.IntegerField(min_value=MIN_WINDOW_HOURS, max_value=MAX_WINDOW_HOURS, required=False)


def _count() -> serializers.IntegerField:
    return serializers.IntegerField(min_value=0, max_value=MAX_COUNT, default=0)


class MetricSerializer(serializers.Serializer):
    """One metric report; ``validated_data`` is a :class:`MetricInput`."""

    source = serializers.CharField(max_length=100)
    metric_type = serializers.CharField(max_length=50, default="batch")
    timestamp = serializers.DateTimeField(required=False)
    geocoding_attempts = _count()
    geocoding_successes = _count()
    validation_attempts = _count()
    validation_passes = _count()

    def validate(self, attrs):
        try:
            return MetricInput(**attrs)
        except MetricInputError as exc:
            raise serializers.ValidationError(exc.errors) from None


class RunCreateSerializer(serializers.Serializer):
    source = serializers.CharField(max_length=100)
    stage = serializers.ChoiceField(choices=PipelineRun.Stage.choices)
    status = serializers.ChoiceField(choices=PipelineRun.Status.choices, default=PipelineRun.Status.RUNNING)
    started_at = serializers.DateTimeField(required=False)
    finished_at = serializers.DateTimeField(required=False)
    items_in = _count()
    items_out = _count()
    error = serializers.CharField(max_length=MAX_ERROR_CHARS, allow_blank=True, default="", trim_whitespace=False)


class RunFinishSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=[PipelineRun.Status.SUCCEEDED, PipelineRun.Status.FAILED])
    finished_at = serializers.DateTimeField(required=False)
    items_in = serializers.IntegerField(min_value=0, max_value=MAX_COUNT, required=False)
    items_out = serializers.IntegerField(min_value=0, max_value=MAX_COUNT, required=False)
    error = serializers.CharField(max_length=MAX_ERROR_CHARS, allow_blank=True, required=False, trim_whitespace=False)


class RunQuerySerializer(serializers.Serializer):
    source = serializers.CharField(max_length=100, required=False)
    stage = serializers.ChoiceField(choices=PipelineRun.Stage.choices, required=False)
    status = serializers.ChoiceField(choices=PipelineRun.Status.choices, required=False)
    limit = serializers.IntegerField(min_value=1, max_value=500, default=50)


class PipelineRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = PipelineRun
        fields = ["id", "source", "stage", "status", "started_at", "finished_at", "items_in", "items_out", "error"]
