"""Retention deletes old metrics in batches and keeps the rest, and the hourly history of what it deleted."""

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.models import DataQualityMetric, HourlyRollup, PipelineRun, PruneMarker
from monitoring.services.retention import RetentionTooShort, prune_metrics, prune_runs
from monitoring.tests.factories import DataQualityMetricFactory, PipelineRunFactory

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
    assert prune_metrics(older_than=timezone.now() - timedelta(days=31)) == 0
    assert DataQualityMetric.objects.count() == 1


@pytest.mark.parametrize("prune", [prune_metrics, prune_runs])
def test_a_cutoff_inside_the_longest_status_window_is_refused_and_deletes_nothing(prune):
    DataQualityMetricFactory(timestamp=timezone.now() - timedelta(days=20))
    PipelineRunFactory(finished_at=timezone.now() - timedelta(days=20), started_at=timezone.now() - timedelta(days=21))
    with pytest.raises(RetentionTooShort):
        prune(older_than=timezone.now() - timedelta(days=29, hours=23))
    assert (DataQualityMetric.objects.count(), PipelineRun.objects.count()) == (1, 1)


def test_pruned_hours_stay_in_the_rollups_while_a_plain_delete_leaves_them():
    old = timezone.now().replace(minute=30) - timedelta(days=40)
    DataQualityMetricFactory(source="acled", timestamp=old, geocoding_attempts=7, geocoding_successes=3)
    DataQualityMetricFactory(source="gdelt", timestamp=old, geocoding_attempts=5, geocoding_successes=5)
    DataQualityMetric.objects.filter(source="gdelt").delete()
    assert prune_metrics(older_than=timezone.now() - timedelta(days=31)) == 1
    assert not DataQualityMetric.objects.exists()
    (kept,) = HourlyRollup.objects.all()
    assert (kept.source, kept.geocoding_attempts, kept.geocoding_successes, kept.reports) == ("acled", 7, 3, 1)
    assert not PruneMarker.objects.exists()
