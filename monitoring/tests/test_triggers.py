"""The database keeps the derived tables (hourly rollups, scrape state) for writers that know nothing of them.

The property test in test_truth.py interleaves every write path; these pin down single behaviours.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.db import connection

from monitoring.feed.db_changes import _conninfo
from monitoring.models import DataQualityMetric, HourlyRollup, ScrapeSource
from monitoring.windows import floor_hour

ORIGINAL_WRITER = (
    "INSERT INTO monitoring_dataqualitymetric (geocoding_attempts, geocoding_successes, validation_attempts, "
    "validation_passes, metric_type, source) VALUES (120, 108, 120, 115, 'batch', 'acled')"
)


@pytest.mark.django_db
def test_the_original_writers_insert_gets_database_defaults_and_reaches_the_rollups():
    with connection.cursor() as cursor:
        cursor.execute(ORIGINAL_WRITER)
    row = DataQualityMetric.objects.get()
    assert abs(row.timestamp - datetime.now(UTC)) < timedelta(minutes=1)
    assert row.ingested_at is not None
    rollup = HourlyRollup.objects.get()
    assert (rollup.source, rollup.hour, rollup.reports) == ("acled", floor_hour(row.timestamp), 1)
    assert (rollup.geocoding_attempts, rollup.geocoding_successes) == (120, 108)
    assert rollup.last_report_at == row.timestamp


@pytest.mark.django_db
def test_moving_a_row_to_another_hour_and_source_moves_its_sums_and_empties_the_old_rollup():
    then = datetime.now(UTC).replace(minute=30, second=0, microsecond=0) - timedelta(hours=5)
    row = DataQualityMetric.objects.create(source="a", timestamp=then, geocoding_attempts=4, geocoding_successes=1)
    DataQualityMetric.objects.filter(pk=row.pk).update(source="b", timestamp=then + timedelta(hours=2))
    (rollup,) = HourlyRollup.objects.all()
    assert (rollup.source, rollup.hour, rollup.geocoding_attempts) == ("b", floor_hour(then) + timedelta(hours=2), 4)


@pytest.mark.django_db
def test_a_rows_stage_keys_its_rollup_and_changing_it_moves_the_sums_between_stages():
    hour = floor_hour(datetime.now(UTC)) - timedelta(hours=4)
    with connection.cursor() as cursor:
        cursor.execute(
            'INSERT INTO monitoring_dataqualitymetric (source, stage, geocoding_attempts, "timestamp") '
            "VALUES ('acled', 'geocode', 4, %s), ('acled', NULL, 6, %s), ('acled', 'geocode', 1, %s)",
            [hour + timedelta(minutes=m) for m in (10, 20, 30)],
        )

    def rollups() -> list[tuple]:
        fields = ("stage", "geocoding_attempts", "reports", "last_report_at")
        return list(HourlyRollup.objects.order_by("stage").values_list(*fields))

    assert rollups() == [("", 6, 1, hour + timedelta(minutes=20)), ("geocode", 5, 2, hour + timedelta(minutes=30))]
    DataQualityMetric.objects.filter(geocoding_attempts=1).update(stage=None)
    assert rollups() == [("", 7, 2, hour + timedelta(minutes=30)), ("geocode", 4, 1, hour + timedelta(minutes=10))]
    DataQualityMetric.objects.filter(stage="geocode").update(stage="validate")
    assert rollups() == [("", 7, 2, hour + timedelta(minutes=30)), ("validate", 4, 1, hour + timedelta(minutes=10))]


@pytest.mark.django_db
def test_deleting_the_newest_report_of_an_hour_moves_its_newest_time_back():
    hour = floor_hour(datetime.now(UTC)) - timedelta(hours=3)
    early, late = (DataQualityMetric.objects.create(source="a", timestamp=hour + timedelta(minutes=m)) for m in (5, 50))
    late.delete()
    assert HourlyRollup.objects.get().last_report_at == early.timestamp


@pytest.mark.django_db
@pytest.mark.postgres
def test_truncating_the_metrics_empties_the_rollups():
    with connection.cursor() as cursor:
        cursor.execute(ORIGINAL_WRITER)
        cursor.execute("TRUNCATE monitoring_dataqualitymetric")
    assert not HourlyRollup.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_two_concurrent_writers_of_one_sources_runs_both_reach_its_scrape_state():
    """The second writer's recomputation waits for the first's lock, then sees its committed run."""
    success = datetime(2026, 1, 1, 10, tzinfo=UTC)
    failure = success + timedelta(minutes=5)
    insert = (
        "INSERT INTO monitoring_pipelinerun (source, stage, status, started_at, finished_at, error) "
        "VALUES ('acled', 'scrape', %s, %s, %s, %s)"
    )
    with psycopg.connect(**_conninfo("default")) as conn:  # the source's row exists: writers update it
        conn.execute(insert, ["succeeded", success - timedelta(days=1), success - timedelta(days=1), ""])
    first = psycopg.connect(**_conninfo("default"))
    first.execute(insert, ["succeeded", success, success, ""])  # open transaction: holds the source's row
    second_done = threading.Event()

    def second_writer() -> None:
        with psycopg.connect(**_conninfo("default")) as conn:
            conn.execute(insert, ["failed", failure, failure, "HTTP 503"])
            conn.commit()
        second_done.set()

    thread = threading.Thread(target=second_writer)
    thread.start()
    assert not second_done.wait(0.5), "the second writer waits for the first one's lock"
    first.commit()
    first.close()
    thread.join(10)
    state = ScrapeSource.objects.get(name="acled")
    assert (state.last_success_at, state.last_failure_at, state.last_error) == (success, failure, "HTTP 503")


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_a_delete_waiting_on_a_concurrent_insert_of_its_hour_keeps_the_inserted_report_as_the_newest():
    """The delete's recomputation of the hour's newest report starts after its lock: it sees the insert."""
    hour = floor_hour(datetime.now(UTC)) - timedelta(hours=2)
    insert = "INSERT INTO monitoring_dataqualitymetric (source, timestamp) VALUES ('acled', %s)"
    with psycopg.connect(**_conninfo("default")) as conn:
        conn.execute(insert, [hour + timedelta(minutes=10)])
        conn.execute(insert, [hour + timedelta(minutes=40)])
    first = psycopg.connect(**_conninfo("default"))
    first.execute(insert, [hour + timedelta(minutes=50)])  # open transaction: holds the hour's rollup
    deleted = threading.Event()

    def delete_the_newest_committed() -> None:
        with psycopg.connect(**_conninfo("default")) as conn:
            conn.execute(
                "DELETE FROM monitoring_dataqualitymetric WHERE timestamp = %s", [hour + timedelta(minutes=40)]
            )
            conn.commit()
        deleted.set()

    thread = threading.Thread(target=delete_the_newest_committed)
    thread.start()
    assert not deleted.wait(0.5), "the delete waits for the insert's lock"
    first.commit()
    first.close()
    thread.join(10)
    rollup = HourlyRollup.objects.get()
    assert (rollup.reports, rollup.last_report_at) == (2, hour + timedelta(minutes=50))
