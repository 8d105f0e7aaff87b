"""Retention deletes old metrics in batches and keeps the rest."""

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.models import DataQualityMetric
from monitoring.services.retention import prune_metrics
from monitoring.tests.factories import DataQualityMetricFactory

pytestmark = pytest.mark.django_db


def test_only_rows_older_than_the_cutoff_are_deleted_in_batches():
    now = timezone.now()
    DataQualityMetricFactory.create_batch(7, timestamp=now - timedelta(days=100))
    kept = DataQualityMetricFactory.create_batch(3, timestamp=now - timedelta(days=10))
    progress = []
    deleted = prune_metrics(older_than=now - timedelta(days=90), batch_size=3, on_batch=progress.append)
    assert deleted == 7
    assert progress == [3, 6, 7]
    assert set(DataQualityMetric.objects.values_list("pk", flat=True)) == {row.pk for row in kept}


def test_nothing_to_prune_deletes_nothing():
    DataQualityMetricFactory()
    assert prune_metrics(older_than=timezone.now() - timedelta(days=1)) == 0
    assert DataQualityMetric.objects.count() == 1
