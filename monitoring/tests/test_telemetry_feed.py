"""The live feed's own metrics move with what sockets and the broadcaster do."""

from __future__ import annotations

import json

import pytest
from channels.testing import WebsocketCommunicator

from conflict_monitor.asgi import application
from monitoring import telemetry
from monitoring.broadcaster import AlwaysLeader, Broadcaster
from monitoring.services.feed import publish_status

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("feed_backend")]
PATH = "/ws/monitoring/pipeline-status"


METRICS = {
    "conflict_monitor_ws_connections": telemetry.WS_CONNECTIONS,
    "conflict_monitor_ws_frames_sent_total": telemetry.WS_FRAMES_SENT,
    "conflict_monitor_ws_refused_total": telemetry.WS_REFUSED,
    "conflict_monitor_ws_resumes_total": telemetry.WS_RESUMES,
    "conflict_monitor_broadcast_seconds_count": telemetry.BROADCAST_SECONDS,
}


def sample(name: str, **labels: str) -> float:
    """One sample of one metric; the whole registry would also run the database-backed collectors."""
    for family in METRICS[name].collect():
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return found.value
    return 0.0


async def test_open_sockets_and_frames_sent_are_counted():
    from channels.db import database_sync_to_async

    from monitoring.selectors import pipeline_status

    await publish_status(document=await database_sync_to_async(pipeline_status)())
    open_before, sent_before = (
        sample("conflict_monitor_ws_connections"),
        sample("conflict_monitor_ws_frames_sent_total"),
    )
    feed = WebsocketCommunicator(application, PATH)
    assert (await feed.connect(timeout=5))[0]
    await feed.receive_from(timeout=5)  # the status snapshot
    assert sample("conflict_monitor_ws_connections") == open_before + 1
    assert sample("conflict_monitor_ws_frames_sent_total") == sent_before + 1
    await feed.disconnect()
    assert sample("conflict_monitor_ws_connections") == open_before


async def test_refused_sockets_are_counted_by_reason(settings):
    settings.MONITORING_PUBLIC_READ = False
    before = sample("conflict_monitor_ws_refused_total", reason="unauthenticated")
    opened = sample("conflict_monitor_ws_connections")
    feed = WebsocketCommunicator(application, PATH)
    await feed.connect(timeout=5)
    assert (await feed.receive_output(timeout=5))["code"] == 4401
    assert sample("conflict_monitor_ws_refused_total", reason="unauthenticated") == before + 1
    assert sample("conflict_monitor_ws_connections") == opened


async def test_resume_outcomes_are_counted():
    broadcaster = Broadcaster(lease=AlwaysLeader(), interval=60, max_push_rate=2)
    await broadcaster.publish_once()
    feed = WebsocketCommunicator(application, PATH)
    assert (await feed.connect(timeout=5))[0]
    first = json.loads(await feed.receive_from(timeout=5))
    await broadcaster.publish_once()
    await feed.receive_from(timeout=5)
    replayed = sample("conflict_monitor_ws_resumes_total", outcome="replayed")
    resynced = sample("conflict_monitor_ws_resumes_total", outcome="resync")
    await feed.send_to(text_data=json.dumps({"type": "resume", "since_seq": first["seq"], "epoch": first["epoch"]}))
    assert json.loads(await feed.receive_from(timeout=5))["data"]["replayed"] == 1
    await feed.receive_from(timeout=5)  # the replayed frame
    await feed.send_to(text_data=json.dumps({"type": "resume", "since_seq": 1, "epoch": "another-epoch"}))
    assert json.loads(await feed.receive_from(timeout=5))["type"] == "resync"
    assert sample("conflict_monitor_ws_resumes_total", outcome="replayed") == replayed + 1
    assert sample("conflict_monitor_ws_resumes_total", outcome="resync") == resynced + 1
    await feed.disconnect()


async def test_broadcaster_ticks_are_timed():
    before = sample("conflict_monitor_broadcast_seconds_count")
    await Broadcaster(lease=AlwaysLeader(), interval=60, max_push_rate=2).publish_once()
    assert sample("conflict_monitor_broadcast_seconds_count") == before + 1
