"""POST silences refuses what could never silence anything: unknown rules and sources, and an end already past."""

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.models import Alert, AlertRule, Silence
from monitoring.tests.factories import DataQualityMetricFactory, PipelineRunFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/monitoring/silences"


@pytest.fixture
def operator(api_client, django_user_model):
    api_client.force_login(django_user_model.objects.create_user("operator", password="pw"))
    return api_client


def _create(client, **body):
    return client.post(URL, {"reason": "r", **body}, format="json")


def _ends(hours=2):
    return (timezone.now() + timedelta(hours=hours)).isoformat()


def _refused(response, field):
    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["error"] == "invalid"
    assert list(body["fields"]) == [field]
    assert isinstance(body["fields"][field], list) and all(isinstance(m, str) for m in body["fields"][field])
    assert Silence.objects.count() == 0
    return body["fields"][field][0]


def test_an_unknown_rule_is_a_400_naming_rule_name(operator):
    message = _refused(_create(operator, rule_name="geocodng-rate-low", ends_at=_ends()), "rule_name")
    assert "geocodng-rate-low" in message


def test_a_default_rule_not_yet_in_the_database_is_known(operator, settings):
    name = settings.MONITORING_ALERT_RULES[0]["name"]
    assert not AlertRule.objects.filter(name=name).exists()
    assert _create(operator, rule_name=name, ends_at=_ends()).status_code == 201


def test_a_rule_created_in_the_admin_is_known(operator):
    AlertRule.objects.create(name="custom-rule", kind="threshold", metric="geocoding_success_rate", critical=50)
    assert _create(operator, rule_name="custom-rule", ends_at=_ends()).status_code == 201


def test_an_unknown_source_is_a_400_naming_source(operator):
    message = _refused(_create(operator, source="gdlet", ends_at=_ends()), "source")
    assert "gdlet" in message


@pytest.mark.parametrize(
    "seen",
    [
        lambda: DataQualityMetricFactory(source="gdelt"),  # its hourly rollup
        lambda: PipelineRunFactory(source="gdelt"),  # a scrape run: ScrapeSource too
        lambda: PipelineRunFactory(source="gdelt", stage="geocode"),
        lambda: Alert.objects.create(fingerprint="f", rule_name="r", source="gdelt", severity="high", summary="s"),
    ],
    ids=["metric", "scrape-run", "geocode-run", "alert"],
)
def test_a_source_with_a_metric_run_or_alert_is_known(operator, seen):
    seen()
    assert _create(operator, source="gdelt", ends_at=_ends()).status_code == 201


def test_empty_rule_and_source_match_anything_and_need_no_lookup(operator):
    assert _create(operator, rule_name="", source="", ends_at=_ends()).status_code == 201


def test_a_silence_that_already_ended_is_a_400_naming_ends_at(operator):
    starts = (timezone.now() - timedelta(hours=3)).isoformat()
    message = _refused(_create(operator, starts_at=starts, ends_at=_ends(hours=-1)), "ends_at")
    assert "Already ended" in message


def test_several_wrong_fields_are_reported_together(operator):
    response = _create(operator, rule_name="nope", source="nowhere", ends_at=_ends(-1))
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"rule_name", "source", "ends_at"}
