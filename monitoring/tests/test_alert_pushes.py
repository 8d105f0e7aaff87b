"""Alert changes made by people (API, admin) and by evaluation reach subscribed live-feed clients after
commit, as their own message types on the alerts topic, and the broadcaster answers with a fresh status."""

import asyncio
import json
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from conflict_monitor.asgi import application
from monitoring.broadcaster import AlwaysLeader, Broadcaster
from monitoring.models import Alert
from monitoring.services.alerts import acknowledge_alert
from monitoring.tests.factories import DataQualityMetricFactory
from monitoring.tests.services.test_alerts import GEO_RULE

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("feed_backend")]
PATH = "/ws/monitoring/pipeline-status"


async def recv(feed: WebsocketCommunicator, timeout: float = 5) -> dict:
    return json.loads(await feed.receive_from(timeout=timeout))


async def alerts_feed() -> tuple[WebsocketCommunicator, dict]:
    """A client subscribed to the alerts topic, and the topic's snapshot it received."""
    feed = WebsocketCommunicator(application, PATH)
    assert (await feed.connect(timeout=5))[0]
    await recv(feed)  # status snapshot
    await feed.send_to(text_data=json.dumps({"type": "subscribe", "topic": "alerts"}))
    assert (await recv(feed))["type"] == "subscribed"
    snapshot = await recv(feed)
    assert snapshot["type"] == "alerts_update"
    return feed, snapshot


def _firing_alert(source: str = "gdelt") -> Alert:
    return Alert.objects.create(
        fingerprint=f"geo:{source}", rule_name="geo", source=source, severity="critical", summary=f"{source} low"
    )


def _operator_post(path: str, data: dict) -> tuple[int, dict]:
    from django.contrib.auth import get_user_model
    from rest_framework.test import APIClient

    client = APIClient()
    user, _ = get_user_model().objects.get_or_create(username="operator")
    client.force_login(user)
    response = client.post(path, data, format="json")
    return response.status_code, response.json()


@pytest.mark.parametrize(
    ("action", "message_type", "state"),
    [("acknowledge", "alert_acknowledged", "acknowledged"), ("resolve", "alert_resolved", "resolved")],
)
async def test_a_transition_through_the_api_reaches_a_subscribed_client(action, message_type, state):
    alert = await database_sync_to_async(_firing_alert)()
    feed, snapshot = await alerts_feed()
    path = f"/api/v1/monitoring/alerts/{alert.pk}/{action}"
    code, body = await database_sync_to_async(_operator_post)(path, {"comment": "on it"})
    assert (code, body["state"]) == (200, state)
    change = await recv(feed)
    assert (change["type"], change["seq"], change["data"]["id"]) == (message_type, snapshot["seq"] + 1, alert.pk)
    assert change["data"]["state"] == state
    listing = await recv(feed)
    assert listing["type"] == "alerts_update"
    assert [a["state"] for a in listing["data"]["alerts"]] == ([] if state == "resolved" else [state])
    await feed.disconnect()


async def test_a_repeated_acknowledge_pushes_nothing(django_user_model):
    alert = await database_sync_to_async(_firing_alert)()
    user = await database_sync_to_async(django_user_model.objects.create_user)("op")
    await database_sync_to_async(acknowledge_alert)(alert_id=alert.pk, user=user)
    feed, _ = await alerts_feed()
    path = f"/api/v1/monitoring/alerts/{alert.pk}/acknowledge"
    code, body = await database_sync_to_async(_operator_post)(path, {})
    assert (code, body["changed"]) == (200, False)
    assert await feed.receive_nothing(timeout=0.5)
    await feed.disconnect()


async def test_an_evaluation_that_fires_an_alert_sends_alert_fired(settings):
    settings.MONITORING_ALERT_RULES = [GEO_RULE]
    await database_sync_to_async(DataQualityMetricFactory)(
        source="gdelt", geocoding_attempts=100, geocoding_successes=40
    )
    feed, snapshot = await alerts_feed()
    await Broadcaster(lease=AlwaysLeader(), interval=60, max_push_rate=2).publish_once()
    # The tick's status goes out before the rules run (with it, from a new broadcaster, the alerts
    # list): both still show the alerts as they were, none.
    early = [await recv(feed)]
    while early[-1]["type"] != "alert_fired":
        early.append(await recv(feed))
    fired = early.pop()
    assert early[0]["type"] == "pipeline_status_update"
    assert all(frame["data"]["alerts"] == [] for frame in early)
    on_alerts_topic = [frame for frame in early if frame["topic"] == "alerts"]
    previous_seq = on_alerts_topic[-1]["seq"] if on_alerts_topic else snapshot["seq"]
    assert (fired["type"], fired["seq"]) == ("alert_fired", previous_seq + 1)
    assert (fired["data"]["rule"], fired["data"]["source"], fired["data"]["severity"]) == (
        "geo-low",
        "gdelt",
        "critical",
    )
    # Then the status again, whose alert list (its own frame on the alerts topic) has the alert.
    following = {frame["type"]: frame for frame in (await recv(feed), await recv(feed))}
    assert following["alerts_update"]["data"]["alerts"][0]["id"] == fired["data"]["id"]
    assert following["pipeline_status_update"]["data"]["alerts"][0]["id"] == fired["data"]["id"]
    await feed.disconnect()


async def test_a_silence_created_through_the_api_marks_the_open_alert_silenced_on_the_feed():
    alert = await database_sync_to_async(_firing_alert)()
    feed, _ = await alerts_feed()
    ends = (timezone.now() + timedelta(hours=1)).isoformat()
    code, _ = await database_sync_to_async(_operator_post)(
        "/api/v1/monitoring/silences", {"source": "gdelt", "ends_at": ends, "reason": "geocoder upgrade"}
    )
    assert code == 201
    change = await recv(feed)
    assert (change["type"], change["data"]["id"], change["data"]["silenced"]) == ("alert_updated", alert.pk, True)
    assert (await recv(feed))["data"]["alerts"][0]["silenced"] is True
    await feed.disconnect()


async def test_an_acknowledge_through_the_api_makes_the_broadcaster_push_a_fresh_status(settings):
    """The hint goes out after commit; the broadcaster answers it early instead of at its next tick."""
    settings.MONITORING_ALERT_RULES = [GEO_RULE]
    await database_sync_to_async(DataQualityMetricFactory)(
        source="gdelt", geocoding_attempts=100, geocoding_successes=40
    )
    broadcaster = Broadcaster(lease=AlwaysLeader(), interval=60, max_push_rate=20)
    stop = asyncio.Event()
    task = asyncio.ensure_future(broadcaster.run(stop))
    try:
        while broadcaster.ticks < 1:  # the first tick fires the alert
            await asyncio.sleep(0.01)
        alert = await database_sync_to_async(Alert.objects.get)(fingerprint="geo-low:gdelt")
        feed = WebsocketCommunicator(application, PATH)
        assert (await feed.connect(timeout=5))[0]
        before = await recv(feed)
        assert [a["state"] for a in before["data"]["alerts"]] == ["firing"]
        path = f"/api/v1/monitoring/alerts/{alert.pk}/acknowledge"
        assert (await database_sync_to_async(_operator_post)(path, {}))[0] == 200
        fresh = await recv(feed)
        assert (fresh["type"], fresh["seq"]) == ("pipeline_status_update", before["seq"] + 1)
        assert [a["state"] for a in fresh["data"]["alerts"]] == ["acknowledged"]
        await feed.disconnect()
    finally:
        stop.set()
        await task


def _admin_bulk(action: str, alert_ids: list[int]) -> int:
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.create_superuser("admin", password="pw"))
    response = client.post("/admin/monitoring/alert/", {"action": action, "_selected_action": alert_ids})
    return response.status_code


async def test_a_bulk_resolve_in_the_admin_reaches_a_subscribed_client():
    first = await database_sync_to_async(_firing_alert)("gdelt")
    second = await database_sync_to_async(_firing_alert)("acled")
    feed, _ = await alerts_feed()
    assert await database_sync_to_async(_admin_bulk)("resolve", [first.pk, second.pk]) == 302
    frames = [await recv(feed) for _ in range(4)]  # each change, then the list after it
    resolved = [f["data"]["id"] for f in frames if f["type"] == "alert_resolved"]
    assert sorted(resolved) == sorted([first.pk, second.pk])
    assert frames[-1]["type"] == "alerts_update" and frames[-1]["data"]["alerts"] == []
    await feed.disconnect()


async def test_an_ingest_that_breaches_a_rule_reaches_a_subscribed_client_as_alert_fired(settings, ingest_key):
    """Ingest commits, hints the running broadcaster, which evaluates early and pushes the alert."""
    settings.MONITORING_ALERT_RULES = [GEO_RULE]
    broadcaster = Broadcaster(lease=AlwaysLeader(), interval=60, max_push_rate=20)
    stop = asyncio.Event()
    task = asyncio.ensure_future(broadcaster.run(stop))
    try:
        while broadcaster.ticks < 1:  # the first tick: nothing to fire yet
            await asyncio.sleep(0.01)
        feed, snapshot = await alerts_feed()

        def ingest() -> int:
            from rest_framework.test import APIClient

            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Token {ingest_key}")
            body = {"source": "gdelt", "geocoding_attempts": 100, "geocoding_successes": 40}
            return client.post("/api/v1/monitoring/metrics", body, format="json").status_code

        assert await database_sync_to_async(ingest)() == 201
        # The interval is 60 s: only the ingest's hint explains a push. The status comes first.
        assert (await recv(feed, timeout=5))["type"] == "pipeline_status_update"
        fired = await recv(feed, timeout=5)
        assert (fired["type"], fired["seq"]) == ("alert_fired", snapshot["seq"] + 1)
        assert (fired["data"]["source"], fired["data"]["severity"]) == ("gdelt", "critical")
        await feed.disconnect()
    finally:
        stop.set()
        await task
