"""API loose ends: cursor paging of runs and alerts, GET runs/<id>, one window parameter name, and
unknown query parameters refused with a 400 that names them."""

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.tests.factories import AlertFactory, PipelineRunFactory

pytestmark = pytest.mark.django_db
API = "/api/v1/monitoring"


@pytest.fixture(autouse=True)
def public(settings):
    settings.MONITORING_PUBLIC_READ = True


def _walk(client, path: str, limit: int) -> list[list[int]]:
    pages, url = [], f"{API}/{path}?limit={limit}"
    while url:
        body = client.get(url).json()
        pages.append([row["id"] for row in body["results"]])
        url = f"{API}/{path}?limit={limit}&cursor={body['next']}" if body["next"] else None
    return pages


def test_runs_page_newest_first_with_ties_broken_by_id_and_nothing_lost_or_repeated(client):
    now = timezone.now()
    same = now - timedelta(minutes=30)
    runs = [PipelineRunFactory(started_at=same) for _ in range(3)] + [
        PipelineRunFactory(started_at=now - timedelta(minutes=m)) for m in (5, 50, 90)
    ]
    pages = _walk(client, "runs", limit=2)
    assert [len(p) for p in pages] == [2, 2, 2]
    flat = [run_id for page in pages for run_id in page]
    assert flat == [runs[3].pk, runs[2].pk, runs[1].pk, runs[0].pk, runs[4].pk, runs[5].pk]


def test_a_row_written_between_pages_does_not_shift_the_next_page(client):
    old = [PipelineRunFactory(started_at=timezone.now() - timedelta(hours=h)) for h in (1, 2, 3)]
    first = client.get(f"{API}/runs?limit=2").json()
    PipelineRunFactory(started_at=timezone.now())  # newer than everything: belongs before page 1
    second = client.get(f"{API}/runs?limit=2&cursor={first['next']}").json()
    assert [r["id"] for r in second["results"]] == [old[2].pk] and second["next"] is None


def test_alerts_page_by_last_seen(client):
    now = timezone.now()
    alerts = [AlertFactory(last_seen=now - timedelta(minutes=m)) for m in (1, 2, 3)]
    assert _walk(client, "alerts", limit=2) == [[alerts[0].pk, alerts[1].pk], [alerts[2].pk]]


@pytest.mark.parametrize("cursor", ["nonsense", "W10", "WyJ4IiwxXQ", "x" * 300])
def test_a_cursor_this_api_did_not_give_is_a_400_naming_it(client, cursor):
    response = client.get(f"{API}/runs?cursor={cursor}")
    assert response.status_code == 400 and "cursor" in response.json()["fields"]


def test_one_run_by_id_and_a_404_for_none(client):
    run = PipelineRunFactory(source="gdelt")
    body = client.get(f"{API}/runs/{run.pk}").json()
    assert (body["id"], body["source"]) == (run.pk, "gdelt")
    missing = client.get(f"{API}/runs/{run.pk + 1000}")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


@pytest.mark.parametrize(
    "path", ["pipeline-status?windw_hours=24", "runs?sorce=gdelt", "alerts?stat=firing", "trends?metrc=volume"]
)
def test_an_unknown_query_parameter_is_a_400_naming_it(client, path):
    response = client.get(f"{API}/{path}")
    assert response.status_code == 400
    name = path.split("?")[1].split("=")[0]
    assert response.json()["fields"] == {name: ["Unknown query parameter."]}


def test_window_hours_is_the_one_window_name_and_window_still_works_on_trends(client):
    assert client.get(f"{API}/pipeline-status?window_hours=6").json()["window_hours"] == 6
    new = client.get(f"{API}/trends?window_hours=48").json()
    old = client.get(f"{API}/trends?window=48").json()
    assert new["window_hours"] == old["window_hours"] == 48
    both = client.get(f"{API}/trends?window=48&window_hours=48")
    assert both.status_code == 400 and "window" in both.json()["fields"]
