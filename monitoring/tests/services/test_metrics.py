"""MetricInput holds the metric rules every writer (API, CLI, simulator) goes through."""

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.models import DataQualityMetric
from monitoring.services.metrics import MetricInput, MetricInputError, record_metrics


def test_valid_input_is_accepted():
    metric = MetricInput(source="acled", geocoding_attempts=3, geocoding_successes=3)
    assert metric.validation_attempts == 0


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"geocoding_attempts": 1, "geocoding_successes": 2}, "geocoding_successes"),
        ({"validation_attempts": 1, "validation_passes": 2}, "validation_passes"),
        ({"geocoding_attempts": True}, "geocoding_attempts"),
        ({"validation_attempts": 1.5}, "validation_attempts"),
        ({"source": "-leading-dash"}, "source"),
        ({"timestamp": timezone.now().replace(tzinfo=None)}, "timestamp"),
        ({"timestamp": timezone.now() + timedelta(hours=2)}, "timestamp"),
    ],
)
def test_invalid_input_names_the_field(fields, bad):
    with pytest.raises(MetricInputError) as caught:
        MetricInput(**{"source": "acled", **fields})
    assert bad in caught.value.errors


@pytest.mark.django_db
def test_record_metrics_stamps_missing_timestamps_with_one_now():
    rows = record_metrics(metrics=[MetricInput(source="a"), MetricInput(source="b")])
    assert rows[0].timestamp == rows[1].timestamp
    assert DataQualityMetric.objects.count() == 2
