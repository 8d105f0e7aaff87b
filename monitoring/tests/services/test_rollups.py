"""Ingest keeps hourly rollups equal to the raw metrics they summarise."""

from datetime import UTC, timedelta

import pytest
from django.db.models import Count, Max, Sum
from django.db.models.functions import TruncHour
from django.utils import timezone

from monitoring.models import DataQualityMetric, HourlyRollup
from monitoring.services.metrics import MetricInput, record_metrics

pytestmark = pytest.mark.django_db
FIELDS = ("geocoding_attempts", "geocoding_successes", "validation_attempts", "validation_passes")


def _raw_by_hour() -> dict:
    rows = (
        DataQualityMetric.objects.annotate(hour=TruncHour("timestamp"))
        .values("source", "hour")
        .annotate(**{f: Sum(f) for f in FIELDS}, reports=Count("*"), last_report_at=Max("timestamp"))
    )
    return {(r["source"], r["hour"]): tuple(r[f] for f in (*FIELDS, "reports", "last_report_at")) for r in rows}


def _rollups() -> dict:
    columns = (*FIELDS, "reports", "last_report_at")
    return {(r.source, r.hour): tuple(getattr(r, f) for f in columns) for r in HourlyRollup.objects.all()}


def test_rollups_add_up_every_batch_by_source_and_hour():
    now = (timezone.now() - timedelta(hours=1)).replace(minute=30)
    batches = [
        [
            MetricInput(
                source="a",
                timestamp=now - timedelta(hours=h),
                geocoding_attempts=10 + h,
                geocoding_successes=h,
                validation_attempts=5,
                validation_passes=5,
            )
            for h in range(5)
        ],
        [MetricInput(source="a", timestamp=now - timedelta(hours=1, minutes=10), geocoding_attempts=7)],
        # Late and out of order: an older report of an hour must not move its newest timestamp back.
        [MetricInput(source="a", timestamp=now - timedelta(minutes=20), geocoding_attempts=1)],
        [MetricInput(source="a", timestamp=now - timedelta(minutes=25), geocoding_attempts=1)],
        [MetricInput(source="b", timestamp=now, validation_attempts=3, validation_passes=1)] * 3,
    ]
    for batch in batches:
        record_metrics(metrics=batch)
    assert _rollups() == _raw_by_hour()
    assert HourlyRollup.objects.get(source="b").reports == 3


def test_timestamps_with_an_offset_land_in_their_utc_hour():
    from datetime import timezone as tz

    local = (timezone.now() - timedelta(hours=3)).astimezone(tz(timedelta(hours=5, minutes=30)))
    record_metrics(metrics=[MetricInput(source="a", timestamp=local, geocoding_attempts=1)])
    (rollup,) = HourlyRollup.objects.all()
    assert rollup.hour == local.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    assert rollup.hour.minute == 0
