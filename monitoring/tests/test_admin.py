"""The Django admin: every monitoring model has a working changelist without N+1 queries."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

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


def _metric_form(**changes) -> dict:
    now = timezone.now()
    form = {
        "timestamp_0": now.strftime("%Y-%m-%d"),
        "timestamp_1": now.strftime("%H:%M:%S"),
        "source": "acled",
        "metric_type": "batch",
        "geocoding_attempts": "10",
        "geocoding_successes": "9",
        "validation_attempts": "0",
        "validation_passes": "0",
        "run": "",
        "stage": "",
    }
    return {**form, **changes}


def test_the_metric_form_links_a_run_of_the_same_source_and_takes_its_stage(admin_browser):
    from monitoring.models import DataQualityMetric

    run = PipelineRunFactory(source="acled", stage="geocode")
    url = PAGES[0] + "add/"
    refused = admin_browser.post(url, _metric_form(source="gdelt", run=str(run.pk)))
    assert refused.status_code == 200 and f"Run {run.pk} is a run of acled, not of gdelt." in refused.content.decode()
    refused = admin_browser.post(url, _metric_form(run=str(run.pk), stage="validate"))
    assert refused.status_code == 200 and "give stage geocode, or none" in refused.content.decode()
    assert admin_browser.post(url, _metric_form(run=str(run.pk))).status_code == 302
    assert list(DataQualityMetric.objects.values_list("run_id", "stage")) == [(run.pk, "geocode")]


def test_tokens_cannot_be_added_in_the_admin_and_can_be_revoked(admin_browser):
    from monitoring.models import IngestToken
    from monitoring.services.tokens import create_ingest_token

    token, _ = create_ingest_token(name="scraper")
    assert admin_browser.get("/admin/monitoring/ingesttoken/add/").status_code == 403
    admin_browser.post(PAGES[2], {"action": "revoke", "_selected_action": [token.pk]})
    assert IngestToken.objects.get(pk=token.pk).revoked_at is not None


def test_the_token_list_shows_and_filters_each_tokens_scope(admin_browser):
    from monitoring.services.tokens import create_ingest_token, create_read_token

    create_ingest_token(name="scraper")
    create_read_token(name="ops-dashboard")
    reads = admin_browser.get(PAGES[2] + "?scope__exact=read").content.decode()
    assert "ops-dashboard" in reads and "scraper" not in reads
    assert "read: the status API and the private live feed" in reads


RULE_FORM = {
    "name": "geo-low",
    "kind": "threshold",
    "metric": "geocoding_success_rate",
    "scope": "both",
    "critical": "70",
    "high": "80",
    "medium": "85",
    "window_hours": "1",
    "min_sample": "50",
    "enabled": "on",
    "auto_resolve": "on",
    "description": "",
}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"critical": "-5"}, "Must be above 0"),
        ({"critical": "90"}, "must be strictly below the high level"),
        ({"kind": "issue_increase"}, "Rules of kind issue_increase read failed_runs or failed_validations"),
        ({"critical": "", "high": "", "medium": ""}, "Set at least one level"),
    ],
)
def test_the_rule_form_refuses_a_rule_the_evaluation_could_not_use(admin_browser, changes, message):
    from monitoring.models import AlertRule

    response = admin_browser.post("/admin/monitoring/alertrule/add/", {**RULE_FORM, **changes})
    assert response.status_code == 200  # the form again, with the error
    assert message in response.content.decode()
    assert not AlertRule.objects.filter(name="geo-low").exists()


def test_the_rule_form_saves_a_valid_rule(admin_browser):
    from monitoring.models import AlertRule

    assert admin_browser.post("/admin/monitoring/alertrule/add/", RULE_FORM).status_code == 302
    assert AlertRule.objects.get(name="geo-low").critical == 70


def _silence_form(**changes) -> dict:
    from monitoring.tests.factories import RawDataQualityMetricFactory

    RawDataQualityMetricFactory(source="gdelt")  # a source the monitor knows
    today = timezone.now().date()
    return {
        "rule_name": "",
        "source": "gdelt",
        "starts_at_0": str(today),
        "starts_at_1": "00:00:00",
        "ends_at_0": str(today + timedelta(days=7)),
        "ends_at_1": "10:00:00",
        "weekdays": "",
        "daily_start": "",
        "duration_minutes": "",
        "reason": "maintenance",
        "created_at_0": str(today),
        "created_at_1": "00:00:00",
        **changes,
    }


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"ends_at_0": "2020-11-22"}, "Already ended"),
        ({"source": "no-such-source"}, "Unknown source &#x27;no-such-source&#x27;"),
        ({"rule_name": "no-such-rule"}, "Unknown rule &#x27;no-such-rule&#x27;"),
        ({"weekdays": "sat"}, "Comma-separated days"),
        ({"weekdays": "5", "daily_start": "23:00"}, "A weekly window needs daily_start"),
        ({"daily_start": "23:00", "duration_minutes": "60"}, "only apply with weekdays"),
    ],
)
def test_the_silence_form_refuses_a_silence_the_evaluation_could_not_use(admin_browser, changes, message):
    from monitoring.models import Silence

    response = admin_browser.post("/admin/monitoring/silence/add/", _silence_form(**changes))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Silence.objects.exists()


def test_the_silence_form_saves_a_weekly_window(admin_browser):
    from monitoring.models import Silence

    form = _silence_form(weekdays="5,6", daily_start="23:00", duration_minutes="120")
    assert admin_browser.post("/admin/monitoring/silence/add/", form).status_code == 302
    assert Silence.objects.get().weekday_set() == {5, 6}


def test_run_changelist_shows_the_yield_and_a_dash_without_input(admin_browser):
    PipelineRunFactory(source="acled", items_in=8, items_out=7)
    PipelineRunFactory(source="gdelt", items_in=0, items_out=0)
    page = admin_browser.get(PAGES[1]).content.decode()
    assert "Yield %" in page and "87.5" in page
    assert '<td class="field-yield_percent">—</td>' in page


def _alerts(n: int, start: int = 0) -> list:
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from monitoring.models import Alert, Silence

    user, _ = get_user_model().objects.get_or_create(username="op")
    made = []
    for i in range(start, start + n):
        made.append(
            Alert.objects.create(
                fingerprint=f"geo:s{i}", rule_name="geo", source=f"s{i}", severity="high", summary=f"s{i} low"
            )
        )
        Alert.objects.create(
            fingerprint=f"val:s{i}",
            rule_name="val",
            source=f"s{i}",
            severity="medium",
            summary="done",
            state="resolved",
            acknowledged_by=user,
            resolved_by=user,
        )
        Silence.objects.create(
            source=f"s{i}", ends_at=timezone.now() + timezone.timedelta(hours=1), reason="m", created_by=user
        )
    return made


@pytest.mark.parametrize("url", ["/admin/monitoring/alert/", "/admin/monitoring/silence/"])
def test_alert_and_silence_changelists_do_not_grow_queries_with_rows(admin_browser, url):
    _alerts(3)
    few = _queries(admin_browser, url)
    _alerts(30, start=3)
    assert _queries(admin_browser, url) == few


@pytest.mark.parametrize(
    ("action", "state", "who"),
    [("acknowledge", "acknowledged", "acknowledged_by"), ("resolve", "resolved", "resolved_by")],
)
def test_bulk_actions_change_state_record_who_and_audit(admin_browser, action, state, who):
    from monitoring.models import Alert, AlertEvent

    first, second = _alerts(2)
    response = admin_browser.post(
        "/admin/monitoring/alert/", {"action": action, "_selected_action": [first.pk, second.pk]}
    )
    assert response.status_code == 302
    for alert in Alert.objects.filter(pk__in=[first.pk, second.pk]):
        assert alert.state == state and getattr(alert, who).username == "admin"
        event = AlertEvent.objects.get(alert=alert, kind=action + "d")
        assert (event.actor.username, event.from_state, event.to_state) == ("admin", "firing", state)
        assert event.comment == f"Bulk {action} in the admin."


def test_bulk_acknowledge_counts_the_resolved_alerts_it_refused(admin_browser):
    from monitoring.models import Alert

    (open_alert,) = _alerts(1)
    resolved = Alert.objects.get(state="resolved")
    response = admin_browser.post(
        "/admin/monitoring/alert/",
        {"action": "acknowledge", "_selected_action": [open_alert.pk, resolved.pk]},
        follow=True,
    )
    assert "Acknowledged 1 alert(s); 1 could not be acknowledged." in response.content.decode()
    assert Alert.objects.get(pk=resolved.pk).state == "resolved"
