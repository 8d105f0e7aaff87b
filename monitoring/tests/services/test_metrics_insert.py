"""record_metrics returns the stored rows: each instance carries the id of the row holding its values."""

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.models import DataQualityMetric
from monitoring.models.metrics import COUNT_FIELDS
from monitoring.services.metrics import MetricInput, record_metrics

pytestmark = pytest.mark.django_db


def test_every_returned_instance_has_the_id_of_the_row_with_its_values():
    start = timezone.now() - timedelta(hours=2)
    metrics = [
        MetricInput(
            source=f"source-{i % 7}",
            geocoding_attempts=100 + i,
            geocoding_successes=i,
            validation_attempts=200 + i,
            validation_passes=i // 2,
            metric_type="hourly" if i % 3 else "batch",
            timestamp=start + timedelta(seconds=37 * i),
        )
        for i in range(60)
    ]

    created = record_metrics(metrics=metrics)

    assert len({row.pk for row in created}) == len(metrics)
    stored = DataQualityMetric.objects.in_bulk([row.pk for row in created])
    for metric, row in zip(metrics, created, strict=True):
        found = stored[row.pk]
        assert found.source == metric.source and found.metric_type == metric.metric_type
        assert found.timestamp == metric.timestamp
        assert [getattr(found, name) for name in COUNT_FIELDS] == [getattr(metric, name) for name in COUNT_FIELDS]


def test_returned_instances_are_saved_rows():
    [row] = record_metrics(metrics=[MetricInput(source="acled", geocoding_attempts=5, geocoding_successes=4)])
    row.geocoding_successes = 3
    row.save()
    assert DataQualityMetric.objects.count() == 1
    assert DataQualityMetric.objects.get().geocoding_successes == 3
