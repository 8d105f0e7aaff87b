"""Alert changes are pushed on the alerts topic as their own message types, then the active list."""

import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from conflict_monitor.asgi import application
from monitoring.models import Alert
from monitoring.services.alerts import acknowledge_alert

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
