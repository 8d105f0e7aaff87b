from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from monitoring.api.paging import CursorField
from monitoring.models import PipelineRun
from monitoring.models.metrics import COUNT_FIELDS
from monitoring.selectors import MAX_WINDOW_HOURS, MIN_WINDOW_HOURS
from monitoring.services.metrics import (
    MAX_COUNT,
    MAX_RUN_ID,
    METRIC_TYPE_PATTERN,
    SOURCE_PATTERN,
    STAGES,
    MetricInput,
    MetricInputError,
)
from monitoring.services.runs import MAX_ERROR_CHARS


@extend_schema_field({"type": "string", "pattern": SOURCE_PATTERN.pattern})
class SourceNameField(serializers.CharField):
    """A source name. The pattern is checked, and its error worded, by the services (``MetricInput``,
    ``record_run``) and the trends query; this field carries it into the OpenAPI schema."""


@extend_schema_field({"type": "string", "pattern": METRIC_TYPE_PATTERN.pattern})
class MetricTypeField(serializers.CharField):
    """A metric type; checked like :class:`SourceNameField`, by ``MetricInput``."""


UNKNOWN_FIELD = serializers.ErrorDetail("Unknown field.", code="unknown_field")


# A request body whose keys must all name a field: DRF drops the others silently, so a misspelt
# "geocodng_attempts" would be stored as a count of 0. Unknown keys are reported with the other fields'
# errors, each under its own name. (A comment, not a docstring: drf-spectacular would make a docstring
# the description of every subclass's schema component.)
class StrictSerializer(serializers.Serializer):
    unknown = UNKNOWN_FIELD

    def to_internal_value(self, data: Any) -> Any:
        unknown = {}
        if isinstance(data, Mapping):
            known = {name for name, field in self.fields.items() if not field.read_only}
            unknown = {key: [self.unknown] for key in data if key not in known}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if unknown and isinstance(exc.detail, Mapping):
                raise serializers.ValidationError({**exc.detail, **unknown}) from None
            raise
        if unknown:
            raise serializers.ValidationError(unknown)
        return value


class QuerySerializer(StrictSerializer):
    """Query parameters: one the endpoint does not know is a 400 naming it, not silently ignored."""

    unknown = serializers.ErrorDetail("Unknown query parameter.", code="unknown_parameter")


class StatusQuerySerializer(QuerySerializer):
    window_hours = serializers.IntegerField(min_value=MIN_WINDOW_HOURS, max_value=MAX_WINDOW_HOURS, required=False)


def _count() -> serializers.IntegerField:
    return serializers.IntegerField(min_value=0, max_value=MAX_COUNT, default=0)


@extend_schema_serializer(description="One data-quality metric report.")
class MetricSerializer(StrictSerializer):
    """One metric report; ``validated_data`` is a :class:`MetricInput`."""

    source = SourceNameField(max_length=100)
    metric_type = MetricTypeField(max_length=50, default="batch")
    timestamp = serializers.DateTimeField(required=False)
    geocoding_attempts = _count()
    geocoding_successes = _count()
    validation_attempts = _count()
    validation_passes = _count()
    run_id = serializers.IntegerField(
        min_value=1,
        max_value=MAX_RUN_ID,
        required=False,
        allow_null=True,
        help_text="The pipeline run that reported this batch (`POST runs`): a run of the same source.",
    )
    stage = serializers.ChoiceField(
        choices=PipelineRun.Stage.choices,
        required=False,
        allow_null=True,
        help_text="The stage that reported it; with `run_id`, the run's stage (the default), else unstaged.",
    )

    def validate(self, attrs):
        try:
            return MetricInput(**attrs)
        except MetricInputError as exc:
            raise serializers.ValidationError(exc.errors) from None


# The same field as MetricSerializer.timestamp: the fast path parses timestamps exactly as DRF does.
_TIMESTAMP = serializers.DateTimeField()
# An item with any other key goes to MetricSerializer, which refuses it naming the key.
_METRIC_KEYS = frozenset(MetricSerializer().fields)


def validate_metrics(data: Any, *, many: bool) -> list[MetricInput]:
    """The metrics of an ingest body (one metric, or a list when ``many``); raises DRF's ValidationError.

    DRF's per-field machinery costs ~40 µs per item, most of a 5000-item request. Items in the plain
    shape pipelines send (known keys only, strings that already match the patterns, integer counts, ISO
    timestamps) are checked directly against the same rules. Any other body, including every invalid
    one, goes through ``MetricSerializer`` unchanged, so error responses and DRF's coercions (``"100"``
    for 100, trimmed strings) stay exactly as they were.
    """
    plain = _plain_metrics(data if many else [data])
    if plain is not None:
        return plain
    serializer = MetricSerializer(data=data, many=many)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data if many else [serializer.validated_data]


def _plain_metrics(items: list[Any]) -> list[MetricInput] | None:
    """``MetricInput`` per item, or None as soon as one item is not plain or not valid."""
    # The field looks the current time zone up through asgiref's Local on every call (~8 % of a
    # 5000-metric request); it cannot change within one request, so it is looked up once.
    timestamp_field = serializers.DateTimeField(default_timezone=_TIMESTAMP.default_timezone())
    metrics = []
    for item in items:
        if type(item) is not dict or not item.keys() <= _METRIC_KEYS:
            return None
        source = item.get("source")
        if type(source) is not str or not SOURCE_PATTERN.fullmatch(source):
            return None
        attrs: dict[str, Any] = {"source": source}
        if "metric_type" in item:
            metric_type = item["metric_type"]
            if type(metric_type) is not str or not METRIC_TYPE_PATTERN.fullmatch(metric_type):
                return None
            attrs["metric_type"] = metric_type
        for name in COUNT_FIELDS:
            if name in item:
                value = item[name]
                # type() rather than isinstance(): bool is an int that DRF refuses.
                if type(value) is not int or not 0 <= value <= MAX_COUNT:
                    return None
                attrs[name] = value
        run_id = item.get("run_id")
        if run_id is not None:
            if type(run_id) is not int or not 1 <= run_id <= MAX_RUN_ID:
                return None
            attrs["run_id"] = run_id
        stage = item.get("stage")
        if stage is not None:
            if stage not in STAGES:
                return None
            attrs["stage"] = stage
        if "timestamp" in item:
            timestamp = item["timestamp"]
            if type(timestamp) is not str:
                return None
            try:
                attrs["timestamp"] = timestamp_field.to_internal_value(timestamp)
            except serializers.ValidationError:
                return None
        try:
            metrics.append(MetricInput(**attrs))
        except MetricInputError:
            return None
    return metrics


class RunCreateSerializer(StrictSerializer):
    source = SourceNameField(max_length=100)
    stage = serializers.ChoiceField(choices=PipelineRun.Stage.choices)
    status = serializers.ChoiceField(choices=PipelineRun.Status.choices, default=PipelineRun.Status.RUNNING)
    started_at = serializers.DateTimeField(required=False)
    finished_at = serializers.DateTimeField(required=False)
    items_in = _count()
    items_out = _count()
    error = serializers.CharField(max_length=MAX_ERROR_CHARS, allow_blank=True, default="", trim_whitespace=False)


class RunFinishSerializer(StrictSerializer):
    status = serializers.ChoiceField(choices=[PipelineRun.Status.SUCCEEDED, PipelineRun.Status.FAILED])
    finished_at = serializers.DateTimeField(required=False)
    items_in = serializers.IntegerField(min_value=0, max_value=MAX_COUNT, required=False)
    items_out = serializers.IntegerField(min_value=0, max_value=MAX_COUNT, required=False)
    error = serializers.CharField(max_length=MAX_ERROR_CHARS, allow_blank=True, required=False, trim_whitespace=False)


class RunQuerySerializer(QuerySerializer):
    source = serializers.CharField(max_length=100, required=False)
    stage = serializers.ChoiceField(choices=PipelineRun.Stage.choices, required=False)
    status = serializers.ChoiceField(choices=PipelineRun.Status.choices, required=False)
    limit = serializers.IntegerField(min_value=1, max_value=500, default=50)
    cursor = CursorField(help_text="The `next` of the previous page.")


class PipelineRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = PipelineRun
        fields = ["id", "source", "stage", "status", "started_at", "finished_at", "items_in", "items_out", "error"]
        # The counts' bounds as the API enforces them, not the database backend's integer range (which
        # the OpenAPI schema would otherwise show, different on SQLite and PostgreSQL).
        extra_kwargs = {name: {"min_value": 0, "max_value": MAX_COUNT} for name in ("items_in", "items_out")}
