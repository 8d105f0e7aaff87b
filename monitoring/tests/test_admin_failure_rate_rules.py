"""The failure-rate rules are editable in the admin and validated like the others."""

import pytest

from monitoring.models import AlertRule
from monitoring.services.alerts import ensure_default_rules

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_browser(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("admin", password="pw"))
    return client


def form(rule: AlertRule, **changes) -> dict[str, str]:
    fields = {
        "name": rule.name,
        "kind": rule.kind,
        "metric": rule.metric,
        "scope": rule.scope,
        "critical": str(rule.critical),
        "high": str(rule.high),
        "medium": str(rule.medium),
        "window_hours": str(rule.window_hours),
        "min_sample": str(rule.min_sample),
        "enabled": "on",
        "auto_resolve": "on",
        "description": "",
    }
    return {**fields, **changes}


def test_the_default_failure_rate_rules_exist_and_are_valid():
    ensure_default_rules()
    rules = AlertRule.objects.filter(kind="failure_rate").order_by("name")
    assert [r.name for r in rules] == ["geocode-failure-rate", "scrape-failure-rate", "validate-failure-rate"]
    assert all(r.validation_errors() == {} for r in rules)
    scrape = rules.get(name="scrape-failure-rate")
    assert (scrape.critical, scrape.high, scrape.medium, scrape.min_sample) == (50, 25, 10, 5)


def test_the_admin_edits_a_failure_rate_rule(admin_browser):
    ensure_default_rules()
    rule = AlertRule.objects.get(name="scrape-failure-rate")
    response = admin_browser.post(f"/admin/monitoring/alertrule/{rule.pk}/change/", form(rule, high="20"))
    assert response.status_code == 302
    rule.refresh_from_db()
    assert rule.high == 20


def test_the_admin_refuses_disordered_failure_rate_levels(admin_browser):
    ensure_default_rules()
    rule = AlertRule.objects.get(name="validate-failure-rate")
    response = admin_browser.post(f"/admin/monitoring/alertrule/{rule.pk}/change/", form(rule, critical="20"))
    assert response.status_code == 200  # the form again, with the error
    rule.refresh_from_db()
    assert rule.critical == 50
