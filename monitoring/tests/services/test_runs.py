"""record_run / finish_run: every writer of pipeline runs goes through these rules."""

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.models import PipelineRun, ScrapeSource
from monitoring.services.runs import MAX_ERROR_CHARS, RunAlreadyFinished, RunInputError, finish_run, record_run

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"source": "has spaces"}, "source"),
        ({"source": ""}, "source"),
        ({"stage": "upload"}, "stage"),
        ({"status": "done"}, "status"),
        ({"items_in": -1}, "items_in"),
        ({"items_out": True}, "items_out"),
        ({"items_in": 1.5}, "items_in"),
        ({"error": "x" * (MAX_ERROR_CHARS + 1)}, "error"),
        ({"started_at": timezone.now() + timedelta(hours=1)}, "started_at"),
        ({"status": "running", "finished_at": timezone.now()}, "finished_at"),
    ],
)
def test_invalid_runs_are_refused_naming_the_field_and_nothing_is_written(changes, field):
    arguments = {"source": "acled", "stage": "scrape", **changes}
    with pytest.raises(RunInputError) as refused:
        record_run(**arguments)
    assert field in refused.value.errors
    assert not PipelineRun.objects.exists()


def test_a_finished_run_cannot_end_before_it_started():
    now = timezone.now()
    with pytest.raises(RunInputError) as refused:
        record_run(source="acled", stage="scrape", status="failed", started_at=now, finished_at=now - timedelta(1))
    assert set(refused.value.errors) == {"finished_at"}


def test_a_run_reported_late_does_not_move_the_sources_latest_success_back():
    now = timezone.now()
    record_run(source="acled", stage="scrape", status="succeeded", started_at=now - timedelta(minutes=5))
    latest = ScrapeSource.objects.get(name="acled").last_success_at
    record_run(
        source="acled",
        stage="scrape",
        status="succeeded",
        started_at=now - timedelta(hours=3),
        finished_at=now - timedelta(hours=2),
    )
    assert ScrapeSource.objects.get(name="acled").last_success_at == latest


def test_the_sources_last_error_is_the_error_of_its_latest_failure():
    now = timezone.now()
    record_run(source="acled", stage="scrape", status="failed", started_at=now - timedelta(minutes=9), error="new")
    record_run(
        source="acled",
        stage="scrape",
        status="failed",
        started_at=now - timedelta(hours=2),
        finished_at=now - timedelta(hours=1),
        error="old, reported late",
    )
    assert ScrapeSource.objects.get(name="acled").last_error == "new"


def test_only_scrape_runs_count_towards_scraping_health():
    record_run(source="acled", stage="geocode", status="succeeded")
    assert not ScrapeSource.objects.filter(name="acled").exists()


def test_finishing_a_run_twice_is_refused_and_keeps_the_first_outcome():
    run = record_run(source="acled", stage="scrape")
    finish_run(run_id=run.pk, status="succeeded", items_out=4)
    with pytest.raises(RunAlreadyFinished):
        finish_run(run_id=run.pk, status="failed")
    run.refresh_from_db()
    assert (run.status, run.items_out) == ("succeeded", 4)


def test_a_run_can_only_finish_as_succeeded_or_failed():
    run = record_run(source="acled", stage="scrape")
    with pytest.raises(RunInputError) as refused:
        finish_run(run_id=run.pk, status="running")
    assert set(refused.value.errors) == {"status"}


def test_recording_a_run_asks_for_a_status_push_only_once_the_transaction_commits(django_capture_on_commit_callbacks):
    from unittest import mock

    with mock.patch("monitoring.services.feed.request_status_push") as push:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            record_run(source="acled", stage="scrape", status="succeeded")
        assert push.call_count == 0, "pushed before the commit"
        for callback in callbacks:
            callback()
    assert push.call_count == 1
