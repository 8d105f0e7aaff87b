from datetime import timedelta

import factory
from django.utils import timezone

from monitoring.models import Alert, DataQualityMetric, PipelineRun
from monitoring.services.metrics import MetricInput, record_metrics
from monitoring.services.runs import record_run


class RawDataQualityMetricFactory(factory.django.DjangoModelFactory):
    """Writes the row with the ORM, bypassing ingest (the database keeps the rollups either way)."""

    class Meta:
        model = DataQualityMetric

    timestamp = factory.LazyFunction(lambda: timezone.now() - timedelta(minutes=5))
    source = "acled"
    metric_type = "batch"
    geocoding_attempts = 100
    geocoding_successes = 90
    validation_attempts = 100
    validation_passes = 95


class DataQualityMetricFactory(RawDataQualityMetricFactory):
    """Records the metric through ingest, as the API does (its validation included)."""

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        (row,) = record_metrics(metrics=[MetricInput(**kwargs)])
        return row


class RawPipelineRunFactory(factory.django.DjangoModelFactory):
    """Writes the row directly, bypassing the services (for tests of the database's own rules)."""

    class Meta:
        model = PipelineRun

    source = "acled"
    stage = PipelineRun.Stage.SCRAPE
    started_at = factory.LazyFunction(lambda: timezone.now() - timedelta(minutes=10))
    finished_at = factory.LazyAttribute(lambda run: run.started_at + timedelta(minutes=1))
    status = PipelineRun.Status.SUCCEEDED
    items_in = 100
    items_out = 100


class PipelineRunFactory(RawPipelineRunFactory):
    """Records the run through the service, as the API does (its validation included)."""

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return record_run(**kwargs)


class AlertFactory(factory.django.DjangoModelFactory):
    """An open alert as the evaluation would have opened it (no rule row: grouped by its fields)."""

    class Meta:
        model = Alert

    rule_name = "geo-low"
    source = "gdelt"
    fingerprint = factory.LazyAttributeSequence(lambda alert, n: f"{alert.rule_name}:{alert.source}:{n}")
    severity = "critical"
    summary = factory.LazyAttribute(lambda alert: f"{alert.rule_name} for {alert.source}")
    evidence = factory.LazyFunction(dict)


# A per-source geocoding threshold rule (critical below 70 %, high below 80, medium below 85; 1 h window,
# 50 attempts at least), for tests that set MONITORING_ALERT_RULES to it alone.
GEO_RULE = {
    "name": "geo-low",
    "kind": "threshold",
    "metric": "geocoding_success_rate",
    "scope": "per_source",
    "critical": 70,
    "high": 80,
    "medium": 85,
    "window_hours": 1,
    "min_sample": 50,
}
