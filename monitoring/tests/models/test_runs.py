"""Pipeline runs: the database refuses impossible runs whatever code path writes them, and fills in
what a program inserting with SQL leaves out."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from monitoring.models import PipelineRun
from monitoring.tests.factories import RawPipelineRunFactory

pytestmark = pytest.mark.postgres


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


@pytest.mark.django_db
def test_an_sql_insert_naming_only_source_and_stage_is_a_running_run_started_now():
    before = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {PipelineRun._meta.db_table} (source, stage) VALUES ('acled', 'scrape')")  # noqa: S608
    run = PipelineRun.objects.get()
    assert (run.status, run.finished_at, run.items_in, run.items_out, run.error) == ("running", None, 0, 0, "")
    assert run.started_at >= before - timedelta(seconds=1)
