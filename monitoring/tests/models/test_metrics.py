"""The database itself refuses impossible rows, whatever code path writes them."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from monitoring.models import DataQualityMetric, PipelineRun
from monitoring.tests.factories import DataQualityMetricFactory, RawDataQualityMetricFactory, RawPipelineRunFactory

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize(
    ("fields", "constraint"),
    [
        ({"geocoding_attempts": -1, "geocoding_successes": 0}, "dqm_geocoding_attempts_non_negative"),
        ({"geocoding_successes": -1}, "dqm_geocoding_successes_non_negative"),
        ({"validation_attempts": -1, "validation_passes": 0}, "dqm_validation_attempts_non_negative"),
        ({"validation_passes": -1}, "dqm_validation_passes_non_negative"),
        ({"geocoding_attempts": 5, "geocoding_successes": 6}, "dqm_geocoding_successes_lte_attempts"),
        ({"validation_attempts": 5, "validation_passes": 6}, "dqm_validation_passes_lte_attempts"),
    ],
)
def test_database_refuses_impossible_metric(fields, constraint):
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        RawDataQualityMetricFactory(**fields)
    assert DataQualityMetric.objects.count() == 0


def test_database_refuses_impossible_metric_written_by_raw_update():
    row = DataQualityMetricFactory(geocoding_attempts=10, geocoding_successes=5)
    with pytest.raises(IntegrityError), transaction.atomic():
        DataQualityMetric.objects.filter(pk=row.pk).update(geocoding_successes=11)


@pytest.mark.parametrize(
    ("fields", "constraint"),
    [
        ({"items_in": -1}, "run_items_non_negative"),
        ({"status": "running"}, "run_status_matches_finished_at"),  # running but finished_at set
        ({"status": "failed", "finished_at": None}, "run_status_matches_finished_at"),
        ({"status": "paused"}, "run_status"),
        ({"stage": "publish"}, "run_stage_valid"),
    ],
)
def test_database_refuses_impossible_run(fields, constraint):
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        RawPipelineRunFactory(**fields)


def test_database_refuses_run_finishing_before_it_started():
    now = timezone.now()
    with pytest.raises(IntegrityError, match="run_finished_after_started"), transaction.atomic():
        RawPipelineRunFactory(started_at=now, finished_at=now - timedelta(seconds=1))
    assert PipelineRun.objects.count() == 0


def test_the_status_window_query_reads_only_the_covering_index():
    """The selector's own per-source window query is answerable from dqm_timestamp_cover alone."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from monitoring.selectors import pipeline_status

    DataQualityMetricFactory.create_batch(50)
    with CaptureQueriesContext(connection) as captured:
        pipeline_status()
    (window_sql,) = [
        q["sql"] for q in captured.captured_queries if "GROUP BY" in q["sql"] and "dataqualitymetric" in q["sql"]
    ]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("EXPLAIN " + window_sql)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index Only Scan using dqm_timestamp_cover" in plan, plan
