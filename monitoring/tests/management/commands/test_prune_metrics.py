from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from monitoring.models import DataQualityMetric, IdempotencyRecord, IngestToken, PipelineRun
from monitoring.tests.factories import DataQualityMetricFactory, PipelineRunFactory

pytestmark = pytest.mark.django_db


def test_deletes_metrics_past_retention_with_progress_and_expired_keys():
    now = timezone.now()
    DataQualityMetricFactory.create_batch(5, timestamp=now - timedelta(days=91))
    DataQualityMetricFactory.create_batch(2, timestamp=now - timedelta(days=89))
    token = IngestToken.objects.create(name="t", prefix="p", key_hash="h")
    IdempotencyRecord.objects.create(
        token=token,
        key="old",
        request_hash="x",
        response_status=201,
        response_body={},
        created_at=now - timedelta(days=2),
    )
    IdempotencyRecord.objects.create(token=token, key="new", request_hash="x", response_status=201, response_body={})
    out = StringIO()
    call_command("prune_metrics", "--days=90", "--batch-size=2", stdout=out)
    assert DataQualityMetric.objects.count() == 2
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]
    text = out.getvalue()
    assert "2 metric(s) deleted so far" in text and "4 metric(s) deleted so far" in text
    assert "Deleted 5 metric(s), 0 finished run(s) and 1 expired idempotency key(s)." in text


def test_deletes_finished_runs_past_retention_with_progress_and_keeps_running_ones():
    old = timezone.now() - timedelta(days=100)
    for _ in range(3):
        PipelineRunFactory(status="succeeded", started_at=old, finished_at=old + timedelta(minutes=1))
    stuck = PipelineRunFactory(status="running", started_at=old, finished_at=None)
    recent = PipelineRunFactory(status="failed")
    out = StringIO()
    call_command("prune_metrics", "--days=90", "--batch-size=2", stdout=out)
    assert set(PipelineRun.objects.values_list("pk", flat=True)) == {stuck.pk, recent.pk}
    text = out.getvalue()
    assert "2 run(s) deleted so far" in text and "3 run(s) deleted so far" in text
    assert "3 finished run(s)" in text


@pytest.mark.parametrize("args", [["--days=0"], ["--days=1000000"], ["--batch-size=0"]])
def test_nonsense_arguments_are_refused(args):
    with pytest.raises(CommandError):
        call_command("prune_metrics", *args, stdout=StringIO())


def test_pruned_metrics_leave_their_hourly_rollups_so_trends_do_not_change():
    from monitoring.models import HourlyRollup
    from monitoring.trends import trends

    now = timezone.now()
    for days in (40, 35, 2):
        DataQualityMetricFactory(
            source="acled", timestamp=now - timedelta(days=days), geocoding_attempts=100, geocoding_successes=days
        )
    rollups = list(HourlyRollup.objects.order_by("hour").values())
    args = {"now": now, "metrics": ["geocoding_success_rate", "volume"], "source": "acled", "bucket": "day"}
    before = trends(**args, window_hours=50 * 24)
    call_command("prune_metrics", "--days=30", stdout=StringIO())
    assert DataQualityMetric.objects.count() == 1
    assert list(HourlyRollup.objects.order_by("hour").values()) == rollups
    assert trends(**args, window_hours=50 * 24) == before
