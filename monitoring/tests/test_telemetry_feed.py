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
    "conflict_monitor_ws_refused_frames_total": telemetry.WS_REFUSED_FRAMES,
    "conflict_monitor_ws_policy_closes_total": telemetry.WS_POLICY_CLOSES,
    "conflict_monitor_feed_status_stale": telemetry.FEED_STATUS_STALE,
    "conflict_monitor_feed_stale_total": telemetry.FEED_STALE,
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


async def test_refused_frames_are_counted_by_code_and_the_policy_close_once(settings):
    settings.WEBSOCKET_MAX_STRIKES = 3
    invalid = sample("conflict_monitor_ws_refused_frames_total", code="invalid_json")
    binary = sample("conflict_monitor_ws_refused_frames_total", code="binary_not_supported")
    closes = sample("conflict_monitor_ws_policy_closes_total")
    feed = WebsocketCommunicator(application, PATH)
    assert (await feed.connect(timeout=5))[0]
    await feed.receive_from(timeout=5)
    await feed.send_to(bytes_data=b"\x00")
    for _ in range(5):  # the fourth strike closes; the fifth arrives on a closing socket
        await feed.send_to(text_data="{not json")
    while (output := await feed.receive_output(timeout=5))["type"] != "websocket.close":
        pass
    assert output["code"] == 4008
    assert sample("conflict_monitor_ws_refused_frames_total", code="binary_not_supported") == binary + 1
    # The third invalid frame is the fourth strike; the later ones count only if read before the close.
    assert invalid + 3 <= sample("conflict_monitor_ws_refused_frames_total", code="invalid_json") <= invalid + 5
    assert sample("conflict_monitor_ws_policy_closes_total") == closes + 1


async def test_a_stale_status_is_a_gauge_while_it_lasts_and_a_count_per_reason(settings):
    settings.WEBSOCKET_STALE_AFTER = 0.2
    broadcaster = Broadcaster(lease=AlwaysLeader(), interval=60, max_push_rate=2)
    await broadcaster.publish_once()
    episodes = sample("conflict_monitor_feed_stale_total", reason="no_update")
    feed = WebsocketCommunicator(application, PATH)
    assert (await feed.connect(timeout=5))[0]
    await feed.receive_from(timeout=5)
    assert sample("conflict_monitor_feed_status_stale") == 0
    assert json.loads(await feed.receive_from(timeout=5))["type"] == "status_stale"
    assert sample("conflict_monitor_feed_status_stale") == 1
    assert sample("conflict_monitor_feed_stale_total", reason="no_update") == episodes + 1
    await broadcaster.publish_once()
    while json.loads(await feed.receive_from(timeout=5))["type"] != "pipeline_status_update":
        pass
    assert sample("conflict_monitor_feed_status_stale") == 0
    await feed.disconnect()
