"""Alert and silence endpoints: filters, detail with audit trail, transitions (auth, idempotence, 409)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.models import Alert, Silence
from monitoring.tests.factories import PipelineRunFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/monitoring/alerts"


@pytest.fixture
def alerts():
    now = timezone.now()
    return [
        Alert.objects.create(
            fingerprint="geo:gdelt",
            rule_name="geo",
            source="gdelt",
            severity="critical",
            summary="gdelt low",
            last_seen=now,
        ),
        Alert.objects.create(
            fingerprint="val:acled",
            rule_name="val",
            source="acled",
            severity="medium",
            summary="acled low",
            last_seen=now - timedelta(minutes=5),
        ),
        Alert.objects.create(
            fingerprint="geo:acled",
            rule_name="geo",
            source="acled",
            severity="high",
            summary="old",
            state="resolved",
            last_seen=now - timedelta(hours=5),
        ),
    ]


@pytest.fixture
def operator(api_client, django_user_model):
    api_client.force_login(django_user_model.objects.create_user("operator", password="pw"))
    return api_client


def test_list_is_newest_first_and_filters(api_client, public_read, alerts):
    assert [a["summary"] for a in api_client.get(URL).json()["results"]] == ["gdelt low", "acled low", "old"]
    assert [a["id"] for a in api_client.get(URL, {"state": "resolved"}).json()["results"]] == [alerts[2].pk]
    assert [a["id"] for a in api_client.get(URL, {"severity": "critical"}).json()["results"]] == [alerts[0].pk]
    assert len(api_client.get(URL, {"source": "acled"}).json()["results"]) == 2
    assert api_client.get(URL, {"state": "sleeping"}).status_code == 400


def test_detail_has_the_audit_trail(operator, public_read, alerts):
    operator.post(f"{URL}/{alerts[0].pk}/acknowledge", {"comment": "on it"}, format="json")
    body = operator.get(f"{URL}/{alerts[0].pk}").json()
    assert body["state"] == "acknowledged" and body["acknowledged_by"] == "operator"
    assert [(e["kind"], e["actor"], e["comment"]) for e in body["events"]] == [("acknowledged", "operator", "on it")]
    assert operator.get(f"{URL}/999999").status_code == 404


def test_transitions_need_a_logged_in_operator(api_client, ingest_key, alerts):
    assert api_client.post(f"{URL}/{alerts[0].pk}/acknowledge").status_code == 401
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {ingest_key}")
    assert api_client.post(f"{URL}/{alerts[0].pk}/acknowledge").status_code == 403
    assert Alert.objects.get(pk=alerts[0].pk).state == "firing"


def test_acknowledge_is_idempotent_and_resolved_alerts_conflict(operator, alerts):
    first = operator.post(f"{URL}/{alerts[0].pk}/acknowledge", {"comment": "mine"}, format="json")
    again = operator.post(f"{URL}/{alerts[0].pk}/acknowledge", {"comment": "mine"}, format="json")
    assert (first.status_code, first.json()["changed"]) == (200, True)
    assert (again.status_code, again.json()["changed"]) == (200, False)
    conflict = operator.post(f"{URL}/{alerts[2].pk}/acknowledge", format="json")
    assert (conflict.status_code, conflict.json()["error"]) == (409, "invalid_transition")


def test_resolve_with_a_comment_and_twice(operator, alerts):
    first = operator.post(f"{URL}/{alerts[1].pk}/resolve", {"comment": "fixed upstream"}, format="json")
    assert first.status_code == 200 and first.json()["state"] == "resolved"
    assert first.json()["resolve_comment"] == "fixed upstream"
    assert operator.post(f"{URL}/{alerts[1].pk}/resolve", format="json").json()["changed"] is False
    assert operator.post(f"{URL}/424242/resolve", format="json").status_code == 404


def test_an_overlong_comment_is_a_400(operator, alerts):
    response = operator.post(f"{URL}/{alerts[0].pk}/acknowledge", {"comment": "x" * 2001}, format="json")
    assert response.status_code == 400 and "comment" in response.json()["fields"]


def test_silences_are_created_listed_and_expired(operator, public_read):
    PipelineRunFactory(source="gdelt")  # a silence names a source the monitor knows
    ends = (timezone.now() + timedelta(hours=2)).isoformat()
    created = operator.post(
        "/api/v1/monitoring/silences",
        {
            "source": "gdelt",
            "ends_at": ends,
            "reason": "geocoder upgrade",
            "weekdays": [5, 6],
            "daily_start": "22:00",
            "duration_minutes": 240,
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["source"], body["weekdays"], body["created_by"]) == ("gdelt", [5, 6], "operator")
    assert [s["id"] for s in operator.get("/api/v1/monitoring/silences").json()["results"]] == [body["id"]]
    assert operator.post(f"/api/v1/monitoring/silences/{body['id']}/expire").status_code == 200
    assert operator.get("/api/v1/monitoring/silences").json()["results"] == []
    assert Silence.objects.count() == 1


@pytest.mark.parametrize(
    "payload",
    [
        {"ends_at": "2000-01-01T00:00:00Z", "reason": "past"},
        {"ends_at": "2999-01-01T00:00:00Z"},
        {"ends_at": "2999-01-01T00:00:00Z", "reason": "r", "weekdays": [2]},
        {
            "ends_at": "2999-01-01T00:00:00Z",
            "reason": "r",
            "weekdays": [9],
            "daily_start": "01:00",
            "duration_minutes": 5,
        },
    ],
)
def test_invalid_silences_are_a_400(operator, payload):
    response = operator.post("/api/v1/monitoring/silences", payload, format="json")
    assert response.status_code == 400 and response.json()["error"] == "invalid"


def test_anonymous_callers_cannot_create_silences(api_client):
    response = api_client.post(
        "/api/v1/monitoring/silences", {"ends_at": "2999-01-01T00:00:00Z", "reason": "r"}, format="json"
    )
    assert response.status_code == 401
