"""The window computation per stage: the same sums as a query of the raw metrics grouped by stage, whole
hours from the per-stage rollups, and a source's stages read alike in the hour that holds the window's end."""

import random
from datetime import timedelta

import pytest
from django.db.models import Count, Max, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from monitoring.models import DataQualityMetric
from monitoring.tests.factories import RawDataQualityMetricFactory
from monitoring.windows import UNSTAGED, merge, window_sums

pytestmark = pytest.mark.django_db

STAGES = ["scrape", "geocode", "validate", None]


def _metric(**fields) -> DataQualityMetric:
    return RawDataQualityMetricFactory(geocoding_successes=0, **fields)


def _raw(start, end, **filters) -> list[dict]:
    """Per (source, stage): the raw metrics' sums, as window_sums writes them."""
    rows = (
        DataQualityMetric.objects.filter(timestamp__gte=start, timestamp__lt=end, **filters)
        .annotate(stage_key=Coalesce("stage", Value("")))
        .values("source", "stage_key")
        .annotate(
            geocoding_attempts=Sum("geocoding_attempts"),
            reports=Count("*"),
            last_updated=Max("timestamp"),
        )
    )
    order = {stage: i for i, stage in enumerate(STAGES)}
    result = [
        {
            "source": row["source"],
            "stage": row["stage_key"] or None,
            "geocoding_attempts": row["geocoding_attempts"],
            "reports": row["reports"],
            "last_updated": row["last_updated"],
        }
        for row in rows
    ]
    return sorted(result, key=lambda row: (row["source"], order[row["stage"]]))


def _picked(rows: list[dict]) -> list[dict]:
    keys = ("source", "stage", "geocoding_attempts", "reports", "last_updated")
    return [{key: row[key] for key in keys} for row in rows]


@pytest.mark.parametrize(
    ("start_offset", "length"),
    [
        (timedelta(minutes=17, seconds=3), timedelta(hours=24)),
        (timedelta(0), timedelta(hours=5)),
        (timedelta(minutes=59, seconds=59), timedelta(hours=1)),
        (timedelta(minutes=30), timedelta(hours=3, minutes=30)),
    ],
)
def test_per_stage_sums_equal_the_raw_metrics_grouped_by_stage(start_offset, length):
    hour = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=30)
    start = hour + start_offset
    end = start + length
    rng = random.Random(11)
    instants = [start, end, start + timedelta(microseconds=1), end - timedelta(microseconds=1)]
    instants += [hour + timedelta(seconds=rng.randrange(0, 29 * 3600)) for _ in range(150)]
    for i, at in enumerate(instants):
        _metric(source=f"s{i % 2}", stage=rng.choice(STAGES), timestamp=at, geocoding_attempts=rng.randrange(1, 99))
    assert _picked(window_sums(start=start, end=end, per_stage=True)) == _raw(start, end)
    for stage in STAGES:
        kept = window_sums(start=start, end=end, stage=stage or UNSTAGED, per_stage=True)
        assert _picked(kept) == [row for row in _raw(start, end) if row["stage"] == stage], stage
    by_stage = window_sums(start=start, end=end, per_source=False, per_stage=True)
    assert [row["stage"] for row in by_stage] == [s for s in STAGES if any(r["stage"] == s for r in _raw(start, end))]
    assert (
        sum(row["reports"] for row in by_stage)
        == DataQualityMetric.objects.filter(timestamp__gte=start, timestamp__lt=end).count()
    )


def test_per_hour_and_per_stage_rows_add_up_to_the_stage_and_the_source_rows():
    hour = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=6)
    for minutes, stage in ((5, "geocode"), (65, "geocode"), (70, None), (130, "validate")):
        _metric(timestamp=hour + timedelta(minutes=minutes), stage=stage, geocoding_attempts=10)
    rows = window_sums(start=hour, end=hour + timedelta(hours=3), per_hour=True, per_stage=True)
    assert [(row["hour"] - hour, row["stage"], row["reports"]) for row in rows] == [
        (timedelta(0), "geocode", 1),
        (timedelta(hours=1), "geocode", 1),
        (timedelta(hours=1), None, 1),
        (timedelta(hours=2), "validate", 1),
    ]
    (source,) = merge(rows, by="source")
    assert (source["source"], source["reports"], source["geocoding_attempts"]) == ("acled", 4, 40)
    assert [(row["stage"], row["reports"]) for row in merge(rows, by="stage")] == [
        ("geocode", 2),
        (None, 1),
        ("validate", 1),
    ]


def test_a_sources_stages_are_read_alike_in_the_hour_that_holds_the_end():
    """One stage's rollup of that hour is older than the end, another's holds a report at the end: the
    hour is read from the raw rows for both stages, so no report is counted twice or missed."""
    end = timezone.now().replace(minute=30, second=0, microsecond=0) - timedelta(hours=2)
    end_hour = end.replace(minute=0)
    _metric(timestamp=end_hour + timedelta(minutes=10), stage="geocode", geocoding_attempts=3)
    _metric(timestamp=end_hour + timedelta(minutes=20), stage="validate", geocoding_attempts=5)
    _metric(timestamp=end_hour + timedelta(minutes=40), stage="validate", geocoding_attempts=99)
    _metric(timestamp=end_hour + timedelta(minutes=50), source="gdelt", geocoding_attempts=7)
    start = end - timedelta(hours=3)
    got = window_sums(start=start, end=end, per_stage=True)
    assert _picked(got) == _raw(start, end)
    assert [(row["source"], row["stage"], row["geocoding_attempts"]) for row in got] == [
        ("acled", "geocode", 3),
        ("acled", "validate", 5),
    ]
    (total,) = window_sums(start=start, end=end)
    assert total["geocoding_attempts"] == 8
