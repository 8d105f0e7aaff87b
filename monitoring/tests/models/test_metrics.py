"""Data-quality metrics: the database refuses impossible counts whatever code path writes them, and the
status window reads only the covering index."""

from unittest import mock

import pytest
from django.db import IntegrityError, transaction

from monitoring.models import DataQualityMetric
from monitoring.tests.factories import DataQualityMetricFactory, RawDataQualityMetricFactory

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


def test_the_status_window_query_reads_only_the_covering_index():
    """The selector's own per-source window query is answerable from dqm_timestamp_cover alone."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from monitoring.selectors import pipeline_status

    DataQualityMetricFactory.create_batch(50)
    # The anomaly detector reads the current hour through window_sums too; this test is about the window.
    no_anomalies = {"findings": [], "readiness": {}}
    with (
        CaptureQueriesContext(connection) as captured,
        mock.patch("monitoring.selectors.status.current_anomalies", return_value=no_anomalies),
    ):
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
