"""The live-feed consumer, driven through the full ASGI application with WebsocketCommunicator,
on the in-memory backends and on real Redis."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import OperationalError

from conflict_monitor.asgi import application
from monitoring import events
from monitoring.broadcaster import AlwaysLeader, Broadcaster
from monitoring.feed import admission
from monitoring.feed.registry import get_store
from monitoring.selectors import pipeline_status
from monitoring.services.feed import publish, publish_status
from monitoring.services.tickets import issue_ticket
from monitoring.tests.factories import DataQualityMetricFactory, PipelineRunFactory

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("feed_backend")]
PATH = "/ws/monitoring/pipeline-status"
ENVELOPE = {"type", "topic", "seq", "epoch", "timestamp", "data"}


async def open_feed(query: str = "", headers: list | None = None) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, PATH + query, headers=headers or [])
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    return communicator


async def recv(communicator: WebsocketCommunicator, timeout: float = 3) -> dict:
    return json.loads(await communicator.receive_from(timeout=timeout))


async def send(communicator: WebsocketCommunicator, message) -> None:
    await communicator.send_to(text_data=json.dumps(message))


async def closed_with(communicator: WebsocketCommunicator, timeout: float = 3) -> int:
    output = await communicator.receive_output(timeout=timeout)
    assert output["type"] == "websocket.close", output
    return output["code"]


async def publish_current_status() -> None:
    await publish_status(document=await database_sync_to_async(pipeline_status)())


# --- snapshot and pushes ------------------------------------------------------------------------
async def test_connect_sends_the_status_document_at_once():
    await database_sync_to_async(DataQualityMetricFactory)(geocoding_attempts=10, geocoding_successes=7)
    feed = await open_feed()
    snapshot = await recv(feed)
    assert set(snapshot) == ENVELOPE
    assert snapshot["type"] == "pipeline_status_update" and snapshot["topic"] == "status"
    assert snapshot["seq"] >= 1 and snapshot["epoch"]
    assert snapshot["timestamp"].endswith("Z")
    expected = await database_sync_to_async(pipeline_status)()
    snapshot["data"].pop("timestamp"), expected.pop("timestamp")
    assert snapshot["data"] == expected
    await feed.disconnect()


async def test_every_publish_reaches_the_client_with_the_next_seq():
    feed = await open_feed()
    first = await recv(feed)
    await publish_current_status()
    await publish_current_status()
    seqs = [(await recv(feed))["seq"] for _ in range(2)]
    assert seqs == [first["seq"] + 1, first["seq"] + 2]
    await feed.disconnect()


async def test_two_clients_see_the_same_seq_and_identical_frames():
    one, two = await open_feed(), await open_feed()
    await recv(one), await recv(two)
    await publish_current_status()
    assert await one.receive_from(timeout=3) == await two.receive_from(timeout=3)
    await one.disconnect(), await two.disconnect()


# --- staleness ----------------------------------------------------------------------------------
@pytest.fixture
def quick_staleness(settings):
    settings.WEBSOCKET_STALE_AFTER = 0.4
    settings.WEBSOCKET_BROADCAST_INTERVAL = 0.4


@pytest.mark.usefixtures("quick_staleness")
async def test_a_status_that_stops_coming_is_flagged_stale_and_the_next_status_ends_it():
    """Never a frozen verdict: without a status for WEBSOCKET_STALE_AFTER the client is told, with the
    last seq it has; repeated while it lasts; the next status frame is current again."""
    feed = await open_feed()
    snapshot = await recv(feed)
    stale = await recv(feed, timeout=2)
    assert set(stale) == ENVELOPE
    assert (stale["type"], stale["topic"], stale["seq"]) == ("status_stale", None, 0)
    assert stale["data"]["reason"] == "no_update" and stale["data"]["topic"] == "status"
    assert stale["data"]["stale_after"] == 0.4
    assert (await recv(feed, timeout=2))["type"] == "status_stale"  # repeated while it lasts
    await publish_current_status()
    while (frame := await recv(feed))["type"] == "status_stale":
        pass  # a repeat may have crossed the publish
    assert (frame["type"], frame["seq"]) == ("pipeline_status_update", snapshot["seq"] + 1)
    assert await feed.receive_nothing(timeout=0.3)  # current again: no notice within stale_after
    await feed.disconnect()


@pytest.mark.usefixtures("quick_staleness")
async def test_a_client_that_connects_or_asks_while_stale_gets_the_notice_after_the_status():
    first = await open_feed()
    await recv(first)
    assert (await recv(first, timeout=2))["type"] == "status_stale"
    late = await open_feed()
    assert (await recv(late))["type"] == "pipeline_status_update"
    notice = await recv(late, timeout=0.2)  # at once, not after the timeout
    assert notice["type"] == "status_stale" and notice["data"]["age_seconds"] >= 0.4
    await send(late, {"type": "get_status"})
    answers = [(await recv(late))["type"] for _ in range(2)]
    assert answers in (["pipeline_status_update", "status_stale"], ["status_stale", "pipeline_status_update"])
    await first.disconnect(), await late.disconnect()


async def test_a_broadcaster_that_cannot_read_the_database_flags_the_status_stale_at_once(monkeypatch):
    feed = await open_feed()
    await recv(feed)

    def database_away():
        raise OperationalError("connection refused")

    monkeypatch.setattr("monitoring.broadcaster.pipeline_status", database_away)
    with pytest.raises(OperationalError):
        await Broadcaster(lease=AlwaysLeader(), interval=60, max_push_rate=2).publish_once()
    notice = await recv(feed, timeout=1)  # the default WEBSOCKET_STALE_AFTER is 6.5 s: this is the report
    assert notice["type"] == "status_stale" and notice["data"]["reason"] == "database_unavailable"
    await feed.disconnect()


# --- client protocol ------------------------------------------------------------------------------
async def test_ping_is_answered_with_pong_echoing_its_token():
    feed = await open_feed()
    snapshot = await recv(feed)
    await send(feed, {"type": "ping", "echo": "abc"})
    pong = await recv(feed)
    assert set(pong) == ENVELOPE
    assert (pong["type"], pong["topic"], pong["seq"], pong["data"]) == ("pong", None, 0, {"echo": "abc"})
    assert pong["epoch"] == snapshot["epoch"]
    await feed.disconnect()


async def test_subscribe_to_a_source_delivers_its_detail_and_unsubscribe_stops_it():
    await database_sync_to_async(PipelineRunFactory)(source="acled")
    feed = await open_feed()
    await recv(feed)
    await send(feed, {"type": "subscribe", "topic": "source:acled"})
    reply = await recv(feed)
    assert reply["type"] == "subscribed"
    assert reply["data"] == {"topic": "source:acled", "topics": ["source:acled", "status"]}
    detail = await recv(feed)  # the snapshot published with the first status
    assert (detail["type"], detail["topic"]) == ("source_status_update", "source:acled")
    assert detail["data"]["source"] == "acled" and detail["data"]["scraping"]["source"] == "acled"

    await publish(topic="source:acled", data={"source": "acled", "status": "critical"})
    pushed = await recv(feed)
    assert (pushed["seq"], pushed["data"]["status"]) == (detail["seq"] + 1, "critical")

    await send(feed, {"type": "unsubscribe", "topic": "source:acled"})
    assert (await recv(feed))["data"] == {"topic": "source:acled", "topics": ["status"]}
    await publish(topic="source:acled", data={"source": "acled", "status": "healthy"})
    await send(feed, {"type": "ping"})
    assert (await recv(feed))["type"] == "pong"  # nothing from the dropped topic came first
    await feed.disconnect()


async def test_get_status_and_get_alerts_return_the_latest_frames():
    feed = await open_feed()
    snapshot = await recv(feed)
    await send(feed, {"type": "get_status"})
    again = await recv(feed)
    assert (again["type"], again["seq"]) == ("pipeline_status_update", snapshot["seq"])
    await send(feed, {"type": "get_alerts"})
    alerts = await recv(feed)
    assert (alerts["type"], alerts["topic"], alerts["data"]) == ("alerts_update", "alerts", {"alerts": []})
    await feed.disconnect()


# --- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("{not json", "invalid_json"),
        ("[" * 20000 + "]" * 20000, "frame_too_large"),
        (json.dumps([1, 2]), "invalid_message"),
        (json.dumps({"type": 5}), "invalid_message"),
        (json.dumps({"type": "shutdown"}), "unknown_type"),
        (json.dumps({"type": "subscribe", "topic": "secrets"}), "unknown_topic"),
        (json.dumps({"type": "subscribe"}), "unknown_topic"),
        (json.dumps({"type": "resume", "since_seq": -1, "epoch": "e"}), "invalid_message"),
        (json.dumps({"type": "resume", "since_seq": "3", "epoch": "e"}), "invalid_message"),
        (json.dumps({"type": "resume", "since_seq": 3}), "invalid_message"),
        (json.dumps({"type": "ping", "echo": {"x": 1}}), "invalid_message"),
        ("[" * 3000 + "]" * 3000, "invalid_json"),
    ],
)
async def test_bad_frames_get_an_error_frame_and_the_connection_stays_up(raw, code):
    feed = await open_feed()
    await recv(feed)
    await feed.send_to(text_data=raw)
    error = await recv(feed)
    assert (error["type"], error["data"]["code"]) == ("error", code), error
    await send(feed, {"type": "ping"})
    assert (await recv(feed))["type"] == "pong"
    await feed.disconnect()


async def test_binary_frames_are_refused_with_an_error_frame():
    feed = await open_feed()
    await recv(feed)
    await feed.send_to(bytes_data=b"\x00\x01")
    assert (await recv(feed))["data"]["code"] == "binary_not_supported"
    await feed.disconnect()


async def test_a_flood_is_rate_limited_with_one_error_per_second(settings):
    settings.WEBSOCKET_RATE_BURST = 5
    settings.WEBSOCKET_RATE_PER_SECOND = 1
    settings.WEBSOCKET_MAX_STRIKES = 1000
    feed = await open_feed()
    await recv(feed)
    for _ in range(30):
        await send(feed, {"type": "ping"})
    replies = []
    while not await feed.receive_nothing(timeout=0.3):
        replies.append((await recv(feed))["type"])
    assert replies.count("pong") == 5
    assert replies.count("error") == 1
    await feed.disconnect()


async def test_repeated_abuse_closes_with_the_policy_code(settings):
    settings.WEBSOCKET_MAX_STRIKES = 5
    feed = await open_feed()
    await recv(feed)
    for _ in range(6):
        await feed.send_to(text_data="nope")
    codes = []
    while True:
        output = await feed.receive_output(timeout=3)
        if output["type"] == "websocket.close":
            break
        codes.append(json.loads(output["text"])["data"]["code"])
    assert codes == ["invalid_json"] * 5
    assert output["code"] == events.CLOSE_POLICY_VIOLATION


# --- resume and gaps -----------------------------------------------------------------------------
async def _publish_n(n: int) -> list:
    return [await publish(topic="status", data={"n": i}) for i in range(n)]


async def test_resume_on_connect_replays_the_missed_frames_in_order():
    frames = await _publish_n(6)
    epoch = frames[0].epoch
    feed = await open_feed(f"?since_seq={frames[1].seq}&epoch={epoch}")
    marker = await recv(feed)
    assert marker["type"] == "resumed"
    assert marker["data"] == {"topic": "status", "since_seq": frames[1].seq, "replayed": 4}
    replayed = [await feed.receive_from(timeout=3) for _ in range(4)]
    assert replayed == [f.text for f in frames[2:]]  # the original frames, byte for byte
    await publish(topic="status", data={"n": "next"})
    assert (await recv(feed))["seq"] == frames[-1].seq + 1
    await feed.disconnect()


async def test_resume_message_replays_what_the_client_missed():
    feed = await open_feed()
    snapshot = await recv(feed)
    await _publish_n(3)
    for _ in range(3):
        await recv(feed)
    await send(feed, {"type": "resume", "since_seq": snapshot["seq"], "epoch": snapshot["epoch"]})
    assert (await recv(feed))["data"]["replayed"] == 3
    assert [(await recv(feed))["seq"] for _ in range(3)] == [snapshot["seq"] + i for i in (1, 2, 3)]
    await feed.disconnect()


async def test_frames_published_during_a_slow_request_follow_its_reply_in_order(monkeypatch):
    """A push that arrives while a resume waits on the store is held back, then sent after the
    replayed frames: the client sees one unbroken sequence, with no frame twice."""
    feed = await open_feed()
    snapshot = await recv(feed)
    await _publish_n(2)
    for _ in range(2):
        await recv(feed)
    store = get_store()
    real_since = store.since
    entered = asyncio.Event()

    async def slow_since(**kwargs):
        entered.set()
        await asyncio.sleep(0.3)
        return await real_since(**kwargs)

    monkeypatch.setattr(store, "since", slow_since)
    await send(feed, {"type": "resume", "since_seq": snapshot["seq"], "epoch": snapshot["epoch"]})
    await asyncio.wait_for(entered.wait(), timeout=3)
    pushed = await _publish_n(2)
    assert (await recv(feed))["type"] == "resumed"
    seqs = [(await recv(feed))["seq"] for _ in range(4)]
    assert seqs == [snapshot["seq"] + i for i in (1, 2, 3, 4)]
    assert seqs[-1] == pushed[-1].seq
    assert await feed.receive_nothing(timeout=0.2)
    await feed.disconnect()


async def test_a_socket_whose_send_fails_is_skipped_and_the_others_keep_receiving():
    """A client that has begun closing makes the server refuse frames: its consumer stops taking
    them at the first failure (no error per frame) and every other client still gets each frame."""
    from monitoring.feed.fanout import get_fanout

    closing, healthy = await open_feed(), await open_feed()
    await recv(closing), await recv(healthy)
    consumers = list(get_fanout().members["status"])
    attempts = []

    async def refuse(message):
        attempts.append(message)
        raise RuntimeError("Attempt to send on a closed protocol")

    consumers[0].base_send = refuse
    frames = await _publish_n(3)
    assert [(await recv(healthy))["seq"] for _ in range(3)] == [f.seq for f in frames]
    assert len(attempts) == 1 and consumers[0].closing
    await closing.disconnect(), await healthy.disconnect()
    assert "status" not in get_fanout().members


async def test_a_handler_that_raises_still_gives_back_the_membership_slot_and_gauge(settings, monkeypatch):
    """However a socket ends, what it held is released: otherwise a crashed consumer would keep its
    fan-out membership and its connection slot for the life of the process."""
    from monitoring import telemetry
    from monitoring.consumers import PipelineStatusConsumer
    from monitoring.feed.fanout import get_fanout
    from monitoring.feed.registry import get_connection_registry

    settings.WEBSOCKET_MAX_CONNECTIONS = 1
    gauge = telemetry.WS_CONNECTIONS._value.get()
    feed = await open_feed()
    await recv(feed)

    async def broken(self, text_data=None, bytes_data=None, **kwargs):
        raise RuntimeError("a handler bug")

    monkeypatch.setattr(PipelineStatusConsumer, "receive", broken)
    await send(feed, {"type": "ping"})
    with pytest.raises(RuntimeError, match="a handler bug"):
        await feed.wait(timeout=3)
    assert "status" not in get_fanout().members
    assert telemetry.WS_CONNECTIONS._value.get() == gauge
    assert await get_connection_registry().acquire(ip="127.0.0.1") == "accepted"  # the one slot is free


async def test_resume_outside_the_history_gets_resync_and_a_fresh_snapshot(settings):
    settings.WEBSOCKET_HISTORY_LENGTH = 10
    frames = await _publish_n(40)
    feed = await open_feed(f"?since_seq=2&epoch={frames[0].epoch}")
    resync = await recv(feed)
    assert resync["type"] == "resync"
    assert resync["data"] == {"topic": "status", "reason": "history_trimmed", "latest_seq": frames[-1].seq}
    assert (await recv(feed))["seq"] == frames[-1].seq
    await feed.disconnect()


@pytest.mark.parametrize(("since", "reason"), [(0, "epoch_changed"), (10_000, "future_seq")])
async def test_resume_with_an_unknown_epoch_or_future_seq_gets_resync(since, reason):
    frames = await _publish_n(2)
    epoch = "not-the-epoch" if reason == "epoch_changed" else frames[0].epoch
    feed = await open_feed(f"?since_seq={since}&epoch={epoch}")
    resync = await recv(feed)
    assert (resync["type"], resync["data"]["reason"]) == ("resync", reason)
    assert (await recv(feed))["seq"] == frames[-1].seq
    await feed.disconnect()


async def test_a_frame_lost_in_delivery_is_filled_from_history():
    """A frame that reaches the store but not the client (e.g. dropped in transit) is replayed."""
    from monitoring.events import topic_frame_parts

    feed = await open_feed()
    snapshot = await recv(feed)
    lost = await get_store().publish(topic="status", parts=topic_frame_parts(topic="status", data={"lost": True}))
    await publish(topic="status", data={"after": True})
    got = [await recv(feed) for _ in range(2)]
    assert [g["seq"] for g in got] == [snapshot["seq"] + 1, snapshot["seq"] + 2]
    assert got[0]["seq"] == lost.seq and got[0]["data"] == {"lost": True}
    assert await feed.receive_nothing(timeout=0.2)
    await feed.disconnect()


# --- limits, lifetime, auth, origin ---------------------------------------------------------------
async def test_connections_over_the_total_cap_are_closed_with_4029(settings):
    settings.WEBSOCKET_MAX_CONNECTIONS = 2
    # The handshake completes before admission decides; the first frame says a socket holds its slot.
    first, second = await open_feed(), await open_feed()
    assert [(await recv(first))["type"], (await recv(second))["type"]] == ["pipeline_status_update"] * 2
    third = await open_feed()
    assert await closed_with(third) == events.CLOSE_TOO_MANY_CONNECTIONS
    await first.disconnect()
    fourth = await open_feed()
    assert (await recv(fourth))["type"] == "pipeline_status_update"
    await second.disconnect(), await fourth.disconnect()


async def test_the_handshake_completes_before_admission_and_a_refused_socket_answers_nothing(monkeypatch):
    """A slow admission (a connection flood queues every socket's Redis round trip) must not hold the
    handshake open: daphne resets one still open after 5 s, and the client would never see its 4029."""
    decide = asyncio.Event()

    async def slow_refusal(scope, query):
        await decide.wait()
        return admission.Admission(close_code=events.CLOSE_TOO_MANY_CONNECTIONS)

    monkeypatch.setattr(admission, "admit", slow_refusal)
    feed = await open_feed()  # accepted while admission is still waiting
    await send(feed, {"type": "ping", "echo": "x"})
    decide.set()
    assert await closed_with(feed) == events.CLOSE_TOO_MANY_CONNECTIONS
    assert await feed.receive_nothing(timeout=0.2)  # the ping of a refused socket is not answered
    await feed.disconnect()


async def test_connections_over_the_per_ip_cap_are_closed_with_4029(settings):
    settings.WEBSOCKET_MAX_CONNECTIONS_PER_IP = 1
    first = await open_feed()
    assert (await recv(first))["type"] == "pipeline_status_update"
    second = await open_feed()
    assert await closed_with(second) == events.CLOSE_TOO_MANY_CONNECTIONS
    await first.disconnect()


async def test_an_old_connection_is_closed_with_the_reconnect_code(settings):
    settings.WEBSOCKET_MAX_CONNECTION_AGE = 0.3
    feed = await open_feed()
    await recv(feed)
    assert await closed_with(feed, timeout=3) == events.CLOSE_RECONNECT


async def test_private_feed_refuses_anonymous_sockets_with_4401(settings):
    settings.MONITORING_PUBLIC_READ = False
    feed = await open_feed()
    assert await closed_with(feed) == events.CLOSE_UNAUTHENTICATED


async def test_a_ticket_opens_the_private_feed_once(settings, django_user_model):
    settings.MONITORING_PUBLIC_READ = False
    user = await database_sync_to_async(django_user_model.objects.create_user)("operator", password="pw")
    ticket = await database_sync_to_async(issue_ticket)(user_id=user.pk)
    feed = await open_feed(f"?ticket={ticket}")
    assert (await recv(feed))["type"] == "pipeline_status_update"
    await feed.disconnect()
    reused = await open_feed(f"?ticket={ticket}")
    assert await closed_with(reused) == events.CLOSE_FORBIDDEN


async def test_a_foreign_origin_is_refused_at_the_handshake(settings):
    settings.ALLOWED_HOSTS = ["monitor.example.org"]
    settings.CSRF_TRUSTED_ORIGINS = ["https://dash.example.org"]
    foreign = WebsocketCommunicator(application, PATH, headers=[(b"origin", b"https://evil.example.com")])
    connected, _ = await foreign.connect(timeout=3)
    assert not connected
    for origin in (b"https://monitor.example.org", b"https://dash.example.org"):
        allowed = await open_feed(headers=[(b"origin", origin)])
        assert (await recv(allowed))["type"] == "pipeline_status_update"
        await allowed.disconnect()


async def test_the_first_client_of_an_empty_history_gets_a_computed_snapshot():
    feed = await open_feed()
    snapshot = await recv(feed)
    assert snapshot["seq"] == 1
    assert snapshot["data"]["overall_status"] == "no_data"
    await asyncio.sleep(0)
    await feed.disconnect()


async def test_a_logged_in_session_opens_the_private_feed(settings, django_user_model):
    from django.test import Client

    settings.MONITORING_PUBLIC_READ = False
    user = await database_sync_to_async(django_user_model.objects.create_user)("viewer", password="pw")
    browser = Client()
    await database_sync_to_async(browser.force_login)(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}"
    feed = await open_feed(headers=[(b"cookie", cookie.encode())])
    assert (await recv(feed))["type"] == "pipeline_status_update"
    await feed.disconnect()


@pytest.mark.parametrize("since", ["²", "-1", "1e3", "3.0", "", " 3", str(events.MAX_SEQ + 1), "9" * 5000])
async def test_a_bad_since_seq_on_the_url_gets_an_error_frame_then_the_snapshot(since):
    """Only ASCII digits up to MAX_SEQ resume; anything else is refused with a frame, never a crash."""
    from urllib.parse import quote

    frames = await _publish_n(2)
    feed = await open_feed(f"?since_seq={quote(since)}&epoch={frames[0].epoch}")
    error = await recv(feed)
    assert (error["type"], error["data"]["code"], error["data"]["request_type"]) == (
        "error",
        "invalid_message",
        "resume",
    )
    snapshot = await recv(feed)
    assert (snapshot["type"], snapshot["seq"]) == ("pipeline_status_update", frames[-1].seq)
    await send(feed, {"type": "ping"})
    assert (await recv(feed))["type"] == "pong"
    await feed.disconnect()


async def test_resume_on_a_quiet_topic_one_behind_gets_exactly_the_missed_frame():
    frames = await _publish_n(3)
    feed = await open_feed(f"?since_seq={frames[-1].seq - 1}&epoch={frames[0].epoch}")
    marker = await recv(feed)
    assert (marker["type"], marker["data"]["replayed"]) == ("resumed", 1)
    assert await feed.receive_from(timeout=3) == frames[-1].text
    assert await feed.receive_nothing(timeout=0.3)
    await feed.disconnect()


async def test_resume_at_the_latest_seq_replays_nothing_and_does_not_resync():
    frames = await _publish_n(3)
    feed = await open_feed(f"?since_seq={frames[-1].seq}&epoch={frames[0].epoch}")
    marker = await recv(feed)
    assert (marker["type"], marker["data"]) == (
        "resumed",
        {"topic": "status", "since_seq": frames[-1].seq, "replayed": 0},
    )
    assert await feed.receive_nothing(timeout=0.3)
    await publish(topic="status", data={"n": "next"})
    assert (await recv(feed))["seq"] == frames[-1].seq + 1
    await feed.disconnect()


@pytest.mark.parametrize("topic", ["alerts", "source:never-subscribed"])
async def test_resume_of_a_topic_not_subscribed_is_an_unknown_topic_error(topic):
    feed = await open_feed()
    await recv(feed)
    await send(feed, {"type": "resume", "topic": topic, "since_seq": 1, "epoch": "e"})
    error = await recv(feed)
    assert (error["type"], error["data"]["code"], error["data"]["request_type"]) == ("error", "unknown_topic", "resume")
    await send(feed, {"type": "ping"})
    assert (await recv(feed))["type"] == "pong"
    await feed.disconnect()


async def test_subscribing_beyond_the_topic_limit_is_refused_and_the_connection_stays_up(settings):
    settings.WEBSOCKET_MAX_TOPICS = 2
    feed = await open_feed()
    await recv(feed)
    await send(feed, {"type": "subscribe", "topic": "source:one"})
    assert (await recv(feed))["data"]["topics"] == ["source:one", "status"]
    await send(feed, {"type": "subscribe", "topic": "source:two"})
    error = await recv(feed)
    assert (error["type"], error["data"]["code"], error["data"]["request_type"]) == (
        "error",
        "invalid_message",
        "subscribe",
    )
    await send(feed, {"type": "ping"})
    assert (await recv(feed))["type"] == "pong"
    await feed.disconnect()


async def test_a_subscribe_while_the_channel_layer_is_down_gets_unavailable_and_the_connection_stays_up(
    monkeypatch,
):
    from channels.layers import get_channel_layer

    feed = await open_feed()
    await recv(feed)

    async def layer_down(*args, **kwargs):
        raise ConnectionError("channel layer unreachable")

    monkeypatch.setattr(get_channel_layer(), "group_add", layer_down, raising=False)
    await send(feed, {"type": "subscribe", "topic": "alerts"})
    error = await recv(feed)
    assert (error["type"], error["data"]["code"], error["data"]["request_type"]) == (
        "error",
        "unavailable",
        "subscribe",
    )
    await send(feed, {"type": "ping"})
    assert (await recv(feed))["type"] == "pong"
    await feed.disconnect()
