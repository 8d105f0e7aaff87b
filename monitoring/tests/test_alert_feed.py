"""Alert changes are pushed on the alerts topic as their own message types, then the active list."""

import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from conflict_monitor.asgi import application
from monitoring.models import Alert
from monitoring.services.alerts import acknowledge_alert
from monitoring.services.feed import publish

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("feed_backend")]


async def test_acknowledging_pushes_alert_acknowledged_then_the_list(django_user_model):
    alert = await database_sync_to_async(Alert.objects.create)(
        fingerprint="geo:gdelt", rule_name="geo", source="gdelt", severity="critical", summary="gdelt low"
    )
    user = await database_sync_to_async(django_user_model.objects.create_user)("operator")
    feed = WebsocketCommunicator(application, "/ws/monitoring/pipeline-status")
    assert (await feed.connect(timeout=5))[0]
    await feed.receive_from(timeout=5)  # status snapshot
    await feed.send_to(text_data=json.dumps({"type": "subscribe", "topic": "alerts"}))
    assert json.loads(await feed.receive_from(timeout=5))["type"] == "subscribed"
    snapshot = json.loads(await feed.receive_from(timeout=5))
    assert snapshot["type"] == "alerts_update" and snapshot["data"]["alerts"][0]["state"] == "firing"

    await database_sync_to_async(acknowledge_alert)(alert_id=alert.pk, user=user, comment="mine")
    change = json.loads(await feed.receive_from(timeout=5))
    assert (change["type"], change["topic"], change["seq"]) == ("alert_acknowledged", "alerts", snapshot["seq"] + 1)
    assert change["data"]["id"] == alert.pk and change["data"]["acknowledged_by"] == "operator"
    listing = json.loads(await feed.receive_from(timeout=5))
    assert listing["type"] == "alerts_update" and listing["data"]["alerts"][0]["state"] == "acknowledged"
    await feed.disconnect()


async def _open_feed() -> WebsocketCommunicator:
    feed = WebsocketCommunicator(application, "/ws/monitoring/pipeline-status")
    assert (await feed.connect(timeout=5))[0]
    assert json.loads(await feed.receive_from(timeout=5))["type"] == "pipeline_status_update"
    return feed


async def _recv(feed: WebsocketCommunicator) -> dict:
    return json.loads(await feed.receive_from(timeout=5))


def _alert(alert_id: int) -> dict:
    return {"id": alert_id, "state": "firing", "severity": "high"}


async def test_a_new_subscriber_gets_the_full_alert_list_then_the_changes_after_it():
    """The latest alerts frame is a single change; a subscriber starts from the last full list instead."""
    feed = await _open_feed()
    listing = await publish(topic="alerts", data={"alerts": [_alert(1)]})
    fired = await publish(topic="alerts", data=_alert(2), message_type="alert_fired")
    await feed.send_to(text_data=json.dumps({"type": "subscribe", "topic": "alerts"}))
    assert (await _recv(feed))["type"] == "subscribed"
    snapshot, change = await _recv(feed), await _recv(feed)
    assert (snapshot["type"], snapshot["seq"], snapshot["data"]) == (
        "alerts_update",
        listing.seq,
        {"alerts": [_alert(1)]},
    )
    assert (change["type"], change["seq"]) == ("alert_fired", fired.seq)
    assert await feed.receive_nothing(timeout=0.2)
    await feed.disconnect()


async def test_get_alerts_answers_with_the_full_list_when_a_change_was_published_last():
    feed = await _open_feed()
    await publish(topic="alerts", data={"alerts": [_alert(1)]})
    await publish(topic="alerts", data=_alert(1), message_type="alert_resolved")
    await feed.send_to(text_data=json.dumps({"type": "get_alerts"}))
    reply = await _recv(feed)
    assert (reply["type"], reply["data"]) == ("alerts_update", {"alerts": [_alert(1)]})
    await feed.disconnect()


async def test_a_resync_on_alerts_restarts_from_the_full_list_not_from_a_change(settings):
    settings.WEBSOCKET_HISTORY_LENGTH = 10
    feed = await _open_feed()
    first = await publish(topic="alerts", data={"alerts": []})
    for alert_id in range(12):
        await publish(topic="alerts", data=_alert(alert_id), message_type="alert_fired")
    listing = await publish(topic="alerts", data={"alerts": [_alert(i) for i in range(12)]})
    last = await publish(topic="alerts", data=_alert(5), message_type="alert_acknowledged")
    await feed.send_to(text_data=json.dumps({"type": "subscribe", "topic": "alerts"}))
    await _recv(feed), await _recv(feed), await _recv(feed)  # subscribed, list, change
    await feed.send_to(
        text_data=json.dumps({"type": "resume", "topic": "alerts", "since_seq": first.seq + 1, "epoch": first.epoch})
    )
    resync = await _recv(feed)
    assert (resync["type"], resync["data"]["reason"]) == ("resync", "history_trimmed")
    assert [(f["type"], f["seq"]) for f in (await _recv(feed), await _recv(feed))] == [
        ("alerts_update", listing.seq),
        ("alert_acknowledged", last.seq),
    ]
    await feed.disconnect()
