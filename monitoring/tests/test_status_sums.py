"""The status document's numbers equal a straightforward computation over the raw rows.

The selector reads whole hours, and the hour that holds the end of the window, from the hourly rollups
and raw metrics only where it must; runs and alerts come from hand-written SQL. These tests build data
around every edge (window start and end, hour boundaries, reports after the end of the window, a
rollup without ``last_report_at``) and compare the document with plain ORM aggregates.
"""

import random
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db.models import Count, Max, Q, Sum
from django.utils import timezone

from monitoring.models import Alert, DataQualityMetric, HourlyRollup, PipelineRun
from monitoring.models.metrics import COUNT_FIELDS
from monitoring.selectors import alert_dict, isoformat, pipeline_status, rate
from monitoring.tests.factories import DataQualityMetricFactory, PipelineRunFactory
from monitoring.windows import window_sums

pytestmark = pytest.mark.django_db

SOURCES = ("acled", "gdelt", "ucdp")


@pytest.fixture
def now():
    """Mid-hour and days ago, so reports after ``now`` in its own hour and the next one are ordinary data."""
    hour = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(days=3)
    return hour + timedelta(minutes=37, seconds=11, microseconds=5)


def _metric(at, source, rng):
    attempts = rng.randrange(1, 400)
    validations = rng.randrange(1, 400)
    DataQualityMetricFactory(
        source=source,
        timestamp=at,
        geocoding_attempts=attempts,
        geocoding_successes=rng.randrange(0, attempts + 1),
        validation_attempts=validations,
        validation_passes=rng.randrange(0, validations + 1),
    )


def _fill_metrics(now, window_hours):
    rng = random.Random(window_hours)
    start = now - timedelta(hours=window_hours)
    end_hour = now.replace(minute=0, second=0, microsecond=0)
    start_hour = start.replace(minute=0, second=0, microsecond=0)
    edges = [
        start,  # included: the window starts with it
        start - timedelta(microseconds=1),
        start + timedelta(microseconds=1),
        start_hour,
        start_hour + timedelta(hours=1),
        start_hour + timedelta(hours=1) - timedelta(microseconds=1),
        end_hour,
        end_hour - timedelta(microseconds=1),
        now,  # excluded: the window ends before it
        now - timedelta(microseconds=1),
    ]
    for at in edges:
        for source in SOURCES:
            _metric(at, source, rng)
    span = int((now - start).total_seconds()) + 2 * 3600
    for _ in range(120):
        _metric(start - timedelta(hours=1) + timedelta(seconds=rng.randrange(span)), rng.choice(SOURCES), rng)
    # After the end of the window: in its last hour for one source only (its rollup then holds more than
    # the window), and in the next hour.
    _metric(now + timedelta(microseconds=1), "gdelt", rng)
    _metric(now + timedelta(minutes=5), "gdelt", rng)
    _metric(end_hour + timedelta(hours=1, minutes=2), "acled", rng)


def _expected_quality(now, window_hours):
    rows = (
        DataQualityMetric.objects.filter(timestamp__gte=now - timedelta(hours=window_hours), timestamp__lt=now)
        .values("source")
        .annotate(**{field: Sum(field) for field in COUNT_FIELDS}, reports=Count("pk"), last_updated=Max("timestamp"))
        .order_by("source")
    )
    return [
        {
            "source": row["source"],
            **{field: row[field] for field in (*COUNT_FIELDS, "reports")},
            "geocoding_success_rate": rate(numerator=row["geocoding_successes"], denominator=row["geocoding_attempts"]),
            "validation_pass_rate": rate(numerator=row["validation_passes"], denominator=row["validation_attempts"]),
            "last_updated": isoformat(row["last_updated"]),
        }
        for row in rows
    ]


def _numbers(row):
    keys = ("source", *COUNT_FIELDS, "reports", "geocoding_success_rate", "validation_pass_rate", "last_updated")
    return {key: row[key] for key in keys}


@pytest.mark.parametrize("window_hours", [1, 2, 24, 720])
def test_data_quality_equals_the_sums_over_the_raw_metrics(now, window_hours):
    _fill_metrics(now, window_hours)
    quality = pipeline_status(now=now, window_hours=window_hours)["data_quality"]
    expected = _expected_quality(now, window_hours)
    assert [_numbers(row) for row in quality["by_source"]] == expected
    for field in (*COUNT_FIELDS, "reports"):
        assert quality[field] == sum(row[field] for row in expected)
    newest = DataQualityMetric.objects.filter(timestamp__lt=now).aggregate(newest=Max("timestamp"))["newest"]
    assert quality["last_updated"] == isoformat(newest) == isoformat(now - timedelta(microseconds=1))


def test_a_last_hour_rollup_without_its_newest_report_time_is_summed_from_raw_metrics(now):
    """Rollups written before ``last_report_at`` existed cannot tell whether reports lie after the window."""
    _fill_metrics(now, 24)
    HourlyRollup.objects.filter(hour=now.replace(minute=0, second=0, microsecond=0)).update(last_report_at=None)
    quality = pipeline_status(now=now, window_hours=24)["data_quality"]
    assert [_numbers(row) for row in quality["by_source"]] == _expected_quality(now, 24)


@pytest.mark.parametrize(
    ("start_offset", "length"),
    [
        (timedelta(minutes=17, seconds=3), timedelta(hours=24)),
        (timedelta(0), timedelta(hours=2)),
        (timedelta(minutes=10), timedelta(minutes=20)),  # inside one hour
        (timedelta(minutes=30), timedelta(hours=3, minutes=30)),  # ends exactly on the hour
    ],
)
def test_window_sums_count_reports_after_the_end_only_outside_the_window(now, start_offset, length):
    hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=30)
    start = hour + start_offset
    end = start + length
    rng = random.Random(11)
    for at in (start, end, end + timedelta(microseconds=1), end + timedelta(minutes=1), start + timedelta(seconds=1)):
        _metric(at, "acled", rng)
    for _ in range(60):
        _metric(hour + timedelta(seconds=rng.randrange(0, 32 * 3600)), rng.choice(SOURCES), rng)
    expected = (
        DataQualityMetric.objects.filter(timestamp__gte=start, timestamp__lt=end)
        .values("source")
        .annotate(**{field: Sum(field) for field in COUNT_FIELDS}, reports=Count("pk"), last_updated=Max("timestamp"))
        .order_by("source")
    )
    assert window_sums(start=start, end=end) == [{**row, "hour": None} for row in expected]


def _fill_runs(now):
    rng = random.Random(3)
    for source in SOURCES:
        for hours_ago in range(0, 40):
            started = now - timedelta(hours=hours_ago, minutes=rng.randrange(0, 50))
            failed = rng.random() < 0.3
            PipelineRunFactory(
                source=source,
                started_at=started,
                finished_at=started + timedelta(minutes=rng.randrange(1, 20)),
                status=PipelineRun.Status.FAILED if failed else PipelineRun.Status.SUCCEEDED,
                error="HTTP 503" if failed else "",
            )
    PipelineRunFactory(
        source="acled", status=PipelineRun.Status.RUNNING, started_at=now - timedelta(minutes=3), finished_at=None
    )
    PipelineRunFactory(
        source="gdelt", status=PipelineRun.Status.RUNNING, started_at=now - timedelta(hours=7), finished_at=None
    )
    PipelineRunFactory(source="ucdp", stage=PipelineRun.Stage.GEOCODE, started_at=now - timedelta(hours=1))


@pytest.mark.parametrize("window_hours", [1, 24, 720])
def test_scraping_counts_equal_the_counts_over_the_runs(now, window_hours, settings):
    _fill_runs(now)
    sources = pipeline_status(now=now, window_hours=window_hours)["scraping_health"]["sources"]
    scrapes = PipelineRun.objects.filter(stage=PipelineRun.Stage.SCRAPE)
    timeout = timedelta(seconds=settings.MONITORING_THRESHOLDS["run_timeout_seconds"])
    for row in sources:
        finished = scrapes.filter(
            source=row["source"], finished_at__gte=now - timedelta(hours=window_hours), finished_at__lt=now
        )
        running = scrapes.filter(source=row["source"], status=PipelineRun.Status.RUNNING)
        assert row["finished_runs"] == finished.count()
        assert row["failed_runs"] == finished.filter(status=PipelineRun.Status.FAILED).count()
        assert row["running_runs"] == running.count()
        assert row["stuck_runs"] == running.filter(started_at__lte=now - timeout).count()
        last = scrapes.filter(source=row["source"]).aggregate(
            run=Max("started_at"),
            success=Max("finished_at", filter=Q(status=PipelineRun.Status.SUCCEEDED)),
            failure=Max("finished_at", filter=Q(status=PipelineRun.Status.FAILED)),
        )
        assert (row["last_run"], row["last_success"], row["last_failure"]) == (
            isoformat(last["run"]),
            isoformat(last["success"]),
            isoformat(last["failure"]),
        )
    assert [row["source"] for row in sources] == sorted(SOURCES)
    assert sources[1]["stuck_runs"] == 1 and sources[0]["running_runs"] == 1


def test_status_alerts_are_the_alert_documents_of_the_active_alerts(now):
    user = get_user_model().objects.create_user(username="alice", password="x")
    Alert.objects.create(
        fingerprint="rate:acled",
        rule_name="rate",
        source="acled",
        severity="high",
        summary="geocoding below 70 %",
        evidence={"rate": 61.5, "window": [1, 24], "note": "naïve"},
        last_seen=now - timedelta(minutes=1),
        silenced=True,
        state=Alert.State.ACKNOWLEDGED,
        acknowledged_by=user,
        acknowledged_at=now - timedelta(minutes=2),
        acknowledge_comment="looking",
    )
    Alert.objects.create(fingerprint="stale:ucdp", rule_name="stale", source="ucdp", severity="critical", summary="s")
    Alert.objects.create(fingerprint="rate:all", rule_name="rate", severity="high", summary="overall", last_seen=now)
    Alert.objects.create(
        fingerprint="old",
        rule_name="rate",
        severity="critical",
        summary="gone",
        state=Alert.State.RESOLVED,
        resolved_by=user,
        resolved_at=now,
    )
    active = Alert.objects.exclude(state=Alert.State.RESOLVED).select_related("acknowledged_by", "resolved_by")
    order = {"critical": 0, "high": 1, "medium": 2}
    expected = [alert_dict(a) for a in sorted(active, key=lambda a: (order[a.severity], -a.last_seen.timestamp()))]
    alerts = pipeline_status(now=now)["alerts"]
    assert alerts == expected
    assert [a["fingerprint"] for a in alerts] == ["stale:ucdp", "rate:all", "rate:acled"]
    assert alerts[2]["acknowledged_by"] == "alice" and alerts[2]["silenced"] is True
    assert alerts[2]["evidence"] == {"rate": 61.5, "window": [1, 24], "note": "naïve"}
