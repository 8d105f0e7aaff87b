"""POST /runs records pipeline runs; POST /runs/<id>/finish closes them; GET /runs lists them."""

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.models import PipelineRun
from monitoring.tests.factories import PipelineRunFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/monitoring/runs"


def test_recording_a_run_needs_a_token(api_client):
    assert api_client.post(URL, {"source": "acled", "stage": "scrape"}, format="json").status_code == 401


def test_a_started_run_is_running_until_finished(ingest_client):
    created = ingest_client.post(URL, {"source": "acled", "stage": "scrape", "items_in": 12}, format="json")
    assert created.status_code == 201, created.json()
    run = created.json()
    assert (run["status"], run["finished_at"], run["items_in"]) == ("running", None, 12)

    finished = ingest_client.post(f"{URL}/{run['id']}/finish", {"status": "succeeded", "items_out": 11}, format="json")
    assert finished.status_code == 200, finished.json()
    stored = PipelineRun.objects.get(pk=run["id"])
    assert (stored.status, stored.items_in, stored.items_out) == ("succeeded", 12, 11)
    assert stored.finished_at >= stored.started_at


def test_a_run_can_be_recorded_already_finished(ingest_client):
    started = timezone.now() - timedelta(minutes=10)
    response = ingest_client.post(
        URL,
        {
            "source": "acled",
            "stage": "geocode",
            "status": "failed",
            "started_at": started.isoformat(),
            "error": "quota",
        },
        format="json",
    )
    assert response.status_code == 201
    run = PipelineRun.objects.get()
    assert (run.status, run.error) == ("failed", "quota")
    assert run.finished_at is not None


def test_finishing_a_finished_run_is_a_409(ingest_client):
    run = PipelineRunFactory()
    response = ingest_client.post(f"{URL}/{run.pk}/finish", {"status": "failed"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"] == "run_already_finished"
    run.refresh_from_db()
    assert run.status == "succeeded"


def test_finishing_an_unknown_run_is_a_json_404(ingest_client):
    response = ingest_client.post(f"{URL}/999999/finish", {"status": "failed"}, format="json")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"source": "acled", "stage": "publish"}, "stage"),
        ({"source": "acled", "stage": "scrape", "status": "paused"}, "status"),
        ({"source": "acled", "stage": "scrape", "items_in": -4}, "items_in"),
        ({"stage": "scrape"}, "source"),
        ({"source": "acled", "stage": "scrape", "finished_at": timezone.now().isoformat()}, "finished_at"),
        (
            {
                "source": "acled",
                "stage": "scrape",
                "status": "failed",
                "started_at": timezone.now().isoformat(),
                "finished_at": (timezone.now() - timedelta(hours=1)).isoformat(),
            },
            "finished_at",
        ),
    ],
)
def test_an_invalid_run_is_a_400_naming_the_field(ingest_client, payload, field):
    response = ingest_client.post(URL, payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["fields"], response.json()
    assert PipelineRun.objects.count() == 0


def test_finishing_with_a_non_final_status_is_a_400(ingest_client):
    run = PipelineRunFactory(status="running", finished_at=None)
    response = ingest_client.post(f"{URL}/{run.pk}/finish", {"status": "running"}, format="json")
    assert response.status_code == 400
    assert "status" in response.json()["fields"]


def test_finish_is_idempotent_under_a_key(ingest_client):
    run = PipelineRunFactory(status="running", finished_at=None)
    first = ingest_client.post(f"{URL}/{run.pk}/finish", {"status": "failed"}, format="json", HTTP_IDEMPOTENCY_KEY="f1")
    retry = ingest_client.post(f"{URL}/{run.pk}/finish", {"status": "failed"}, format="json", HTTP_IDEMPOTENCY_KEY="f1")
    assert first.status_code == retry.status_code == 200
    assert retry.json() == first.json()


def test_recording_a_run_is_idempotent_under_a_key(ingest_client):
    payload = {"source": "acled", "stage": "scrape"}
    first = ingest_client.post(URL, payload, format="json", HTTP_IDEMPOTENCY_KEY="r1")
    retry = ingest_client.post(URL, payload, format="json", HTTP_IDEMPOTENCY_KEY="r1")
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert PipelineRun.objects.count() == 1


def test_runs_list_newest_first_with_filters(api_client, public_read):
    now = timezone.now()
    PipelineRunFactory(source="acled", started_at=now - timedelta(hours=2))
    newest = PipelineRunFactory(source="acled", started_at=now - timedelta(hours=1), status="failed")
    PipelineRunFactory(source="gdelt", stage="geocode")
    body = api_client.get(URL, {"source": "acled"}).json()
    assert [r["source"] for r in body["results"]] == ["acled", "acled"]
    assert body["results"][0]["id"] == newest.pk
    assert len(api_client.get(URL, {"status": "failed"}).json()["results"]) == 1
    assert len(api_client.get(URL, {"limit": 1}).json()["results"]) == 1
    assert api_client.get(URL, {"limit": 0}).status_code == 400
