"""GET /metrics/pipeline: the pipeline's numbers as Prometheus gauges, equal to the raw data, capped."""

from datetime import timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from monitoring.models import DataQualityMetric
from monitoring.tests.factories import DataQualityMetricFactory, PipelineRunFactory

pytestmark = pytest.mark.django_db
URL = "/metrics/pipeline"


def _samples(response) -> dict[tuple[str, tuple], float]:
    assert response.status_code == 200, response.content
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


@pytest.fixture
def pipeline(settings):
    settings.MONITORING_PUBLIC_READ = True
    settings.MONITORING_METRICS_TOKEN = ""
    now = timezone.now()
    for minutes, attempts, successes in ((50, 200, 190), (20, 100, 40)):
        DataQualityMetricFactory(
            source="gdelt",
            timestamp=now - timedelta(minutes=minutes),
            geocoding_attempts=attempts,
            geocoding_successes=successes,
            validation_attempts=successes,
            validation_passes=successes - 5,
        )
    DataQualityMetricFactory(
        source="acled",
        timestamp=now - timedelta(minutes=30),
        geocoding_attempts=1000,
        geocoding_successes=990,
        validation_attempts=990,
        validation_passes=980,
    )
    PipelineRunFactory(source="gdelt", status="failed", error="HTTP 403", started_at=now - timedelta(minutes=40))
    PipelineRunFactory(source="gdelt", started_at=now - timedelta(minutes=10))
    PipelineRunFactory(source="acled", started_at=now - timedelta(minutes=10))


def test_the_gauges_equal_an_independent_query_of_the_raw_rows(client, pipeline):
    samples = _samples(client.get(URL))
    for source in ("gdelt", "acled"):
        raw = DataQualityMetric.objects.filter(source=source).aggregate(
            a=Sum("geocoding_attempts"),
            s=Sum("geocoding_successes"),
            va=Sum("validation_attempts"),
            vp=Sum("validation_passes"),
            n=Sum(1),
        )
        key = ("conflict_monitor_pipeline_source_success_rate_percent", (("source", source), ("stage", "geocode")))
        assert samples[key] == pytest.approx(
            100 * raw["s"] / raw["a"], abs=0.05
        )  # the status document rounds rates to 0.1
        key = ("conflict_monitor_pipeline_source_success_rate_percent", (("source", source), ("stage", "validate")))
        assert samples[key] == pytest.approx(
            100 * raw["vp"] / raw["va"], abs=0.05
        )  # the status document rounds rates to 0.1
        assert samples[("conflict_monitor_pipeline_source_records", (("source", source),))] == raw["a"]
    assert samples[("conflict_monitor_pipeline_records", ())] == 1300
    assert samples[("conflict_monitor_pipeline_source_scrape_failure_rate_percent", (("source", "gdelt"),))] == 50.0
    age = samples[("conflict_monitor_pipeline_source_last_report_age_seconds", (("source", "gdelt"),))]
    assert 19 * 60 <= age <= 21 * 60
    assert samples[("conflict_monitor_pipeline_sources_omitted", ())] == 0
    assert {key[1] for key in samples if key[0] == "conflict_monitor_pipeline_alerts_open"} == {
        (("severity", s),) for s in ("critical", "high", "medium")
    }


def test_the_cap_keeps_the_source_in_the_worst_state(client, pipeline, settings):
    settings.MONITORING_PIPELINE_METRICS_MAX_SOURCES = 1
    samples = _samples(client.get(URL))
    exported = {dict(labels)["source"] for name, labels in samples if name == "conflict_monitor_pipeline_source_status"}
    assert exported == {"gdelt"}, "gdelt's 76.7 % geocoding rate is the worse state"
    assert samples[("conflict_monitor_pipeline_sources_omitted", ())] == 1


def test_the_pipeline_gauges_need_the_metrics_credentials(client, settings):
    settings.MONITORING_PUBLIC_READ = True
    settings.MONITORING_METRICS_TOKEN = "s3cret-token"
    assert client.get(URL).status_code == 401
    assert client.get(URL, headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
