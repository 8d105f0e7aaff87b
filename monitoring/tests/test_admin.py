"""The Django admin: every monitoring model has a working changelist without N+1 queries."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from monitoring.tests.factories import DataQualityMetricFactory, PipelineRunFactory

pytestmark = pytest.mark.django_db
PAGES = [
    "/admin/monitoring/dataqualitymetric/",
    "/admin/monitoring/pipelinerun/",
    "/admin/monitoring/ingesttoken/",
    "/admin/monitoring/idempotencyrecord/",
]


@pytest.fixture
def admin_browser(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("admin", password="pw"))
    return client


def _make(n: int, start: int = 0) -> None:
    from monitoring.services.idempotency import run_idempotent
    from monitoring.services.tokens import create_ingest_token

    for i in range(start, start + n):
        DataQualityMetricFactory(source=f"s{i}", geocoding_attempts=8, geocoding_successes=7)
        PipelineRunFactory(source=f"s{i}")
        token, _ = create_ingest_token(name=f"t{i}")
        run_idempotent(token=token, key=f"k{i}", fingerprint="f", action=lambda: (201, {}), ttl_hours=24)


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


@pytest.mark.parametrize("url", PAGES)
def test_changelist_query_count_does_not_grow_with_rows(admin_browser, url):
    _make(3)
    few = _queries(admin_browser, url)
    _make(30, start=3)
    assert _queries(admin_browser, url) == few


def test_metric_changelist_shows_the_computed_rates(admin_browser):
    DataQualityMetricFactory(geocoding_attempts=8, geocoding_successes=7, validation_attempts=3, validation_passes=1)
    page = admin_browser.get(PAGES[0]).content.decode()
    assert "87.5" in page and "33.3" in page


def test_tokens_cannot_be_added_in_the_admin_and_can_be_revoked(admin_browser):
    from monitoring.models import IngestToken
    from monitoring.services.tokens import create_ingest_token

    token, _ = create_ingest_token(name="scraper")
    assert admin_browser.get("/admin/monitoring/ingesttoken/add/").status_code == 403
    admin_browser.post(PAGES[2], {"action": "revoke", "_selected_action": [token.pk]})
    assert IngestToken.objects.get(pk=token.pk).revoked_at is not None
