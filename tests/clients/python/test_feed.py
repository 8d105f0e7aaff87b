"""``follow()``'s rules without a real server: the position kept per frame (duplicates dropped, resync and a new
epoch start over, a stale notice crossed by a newer status is void), the socket URL, what each close code asks
for, and the reconnect loop against a local WebSocket server that plays scripted sessions (resume on the URL,
back-off, typed errors instead of loops, idle sockets given up, the key in the handshake's header)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from conflict_monitor_client import (
    AsyncMonitor,
    AuthenticationFailed,
    ConnectionFailed,
    FeedClosed,
    FeedPosition,
    NotFound,
    PermissionDenied,
    RetryPolicy,
    StatusStale,
    StatusUpdate,
)
from conflict_monitor_client.feed import Cursor, Reconnect, close_verdict, feed_url, parse_frame

from tests.clients.python.feed_stub import Close, Drop, Pause, Session, feed_stub, reply_frame, status_frame
from tests.clients.python.stub_server import Reply, stub_server

FAST = RetryPolicy(initial_delay=0.05, multiplier=2, max_delay=0.2)
READ_KEY = "cmr_0123456789ab_" + "k" * 43
INGEST_KEY = "cm_0123456789ab_" + "k" * 43


def _frame(message: dict):
    return parse_frame(json.dumps(message))


# --- the cursor -----------------------------------------------------------------------------------
def test_documents_follow_in_order_and_a_duplicate_is_dropped():
    cursor = Cursor()
    first = cursor.receive(_frame(status_frame(41)))
    assert isinstance(first, StatusUpdate) and (first.seq, first.resynced) == (41, True)
    assert first.status["n"] == 41 and first.timestamp == datetime(2026, 12, 7, 12, tzinfo=UTC)
    second = cursor.receive(_frame(status_frame(42)))
    assert (second.seq, second.resynced) == (42, False)
    assert cursor.receive(_frame(status_frame(42))) is None
    assert cursor.receive(_frame(status_frame(40))) is None
    assert cursor.position == FeedPosition("e1", 42)
    assert cursor.query() == {"since_seq": "42", "epoch": "e1"}


def test_a_resync_drops_the_position_and_the_next_snapshot_is_marked_resynced():
    cursor = Cursor()
    cursor.receive(_frame(status_frame(41)))
    resync = reply_frame("resync", topic="status", reason="history_trimmed", latest_seq=90)
    assert cursor.receive(_frame(resync)) is None
    assert cursor.position is None and cursor.query() == {}
    snapshot = cursor.receive(_frame(status_frame(90)))
    assert (snapshot.seq, snapshot.resynced) == (90, True)


def test_a_new_epoch_is_a_fresh_start_even_with_a_lower_seq():
    cursor = Cursor()
    cursor.receive(_frame(status_frame(41)))
    fresh = cursor.receive(_frame(status_frame(1, epoch="e2")))
    assert (fresh.seq, fresh.epoch, fresh.resynced) == (1, "e2", True)


def test_a_stored_position_resumes_without_a_resync():
    cursor = Cursor(since=FeedPosition("e1", 41))
    assert cursor.query() == {"since_seq": "41", "epoch": "e1"}
    assert cursor.receive(_frame(status_frame(41))) is None
    assert cursor.receive(_frame(status_frame(42))).resynced is False


def test_a_stale_notice_counts_until_the_next_document_unless_a_newer_status_crossed_it():
    cursor = Cursor()
    cursor.receive(_frame(status_frame(41)))
    stale = reply_frame("status_stale", topic="status", reason="no_update", age_seconds=7.1, stale_after=6.5)
    assert cursor.receive(_frame({**stale, "data": {**stale["data"], "last_seq": 40}})) is None
    notice = cursor.receive(_frame({**stale, "data": {**stale["data"], "last_seq": 41}}))
    assert notice == StatusStale(reason="no_update", last_seq=41, age_seconds=7.1, stale_after=6.5)
    assert cursor.stale == notice
    cursor.receive(_frame(status_frame(42)))
    assert cursor.stale is None


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"type": "x"}',
        json.dumps({**status_frame(1), "seq": True}),
        json.dumps({**status_frame(1), "timestamp": "yesterday"}),
    ],
)
def test_text_that_is_not_a_frame_is_ignored(text):
    assert parse_frame(text) is None


def test_replies_and_other_topics_yield_nothing():
    cursor = Cursor()
    for frame in (
        reply_frame("resumed", topic="status", since_seq=1, replayed=0),
        reply_frame("error", code="invalid_message", message="bad since_seq"),
        {**status_frame(5), "type": "alerts_update", "topic": "alerts"},
    ):
        assert cursor.receive(_frame(frame)) is None
    assert cursor.position is None


@pytest.mark.parametrize(
    ("base", "url"),
    [
        ("http://127.0.0.1:8000/api/v1/monitoring/", "ws://127.0.0.1:8000/ws/monitoring/pipeline-status"),
        ("https://cm.example/monitor/api/v1/monitoring/", "wss://cm.example/monitor/ws/monitoring/pipeline-status"),
    ],
)
def test_the_socket_url_follows_the_servers_url(base, url):
    assert feed_url(base, {}) == url
    assert feed_url(base, {"since_seq": "4", "epoch": "ab"}) == url + "?since_seq=4&epoch=ab"


def test_what_each_close_code_asks_for():
    assert close_verdict(4000, delivered=True, token=READ_KEY) == Reconnect(backoff=False)
    assert close_verdict(4000, delivered=False, token=READ_KEY) == Reconnect(backoff=True)
    for code in (None, 1001, 1011, 4029):
        assert close_verdict(code, delivered=True, token=READ_KEY) == Reconnect(backoff=True)
    assert isinstance(close_verdict(4401, delivered=False, token=READ_KEY), AuthenticationFailed)
    assert isinstance(close_verdict(4403, delivered=False, token=READ_KEY), AuthenticationFailed)
    ingest = close_verdict(4403, delivered=False, token=INGEST_KEY)
    assert isinstance(ingest, PermissionDenied) and "read key" in ingest.message and ingest.close_code == 4403
    assert isinstance(close_verdict(4008, delivered=True, token=READ_KEY), FeedClosed)


def test_the_clients_names_are_the_servers():
    from conflict_monitor_client import feed

    from monitoring import events
    from monitoring.services import tokens

    assert (feed.STATUS_UPDATE, feed.RESYNC, feed.RESUMED, feed.STATUS_STALE, feed.ERROR) == (
        events.PIPELINE_STATUS_UPDATE,
        events.RESYNC,
        events.RESUMED,
        events.STATUS_STALE,
        events.ERROR,
    )
    assert (
        feed.CLOSE_RECONNECT,
        feed.CLOSE_POLICY_VIOLATION,
        feed.CLOSE_TOO_MANY_CONNECTIONS,
        feed.CLOSE_UNAUTHENTICATED,
        feed.CLOSE_FORBIDDEN,
    ) == (
        events.CLOSE_RECONNECT,
        events.CLOSE_POLICY_VIOLATION,
        events.CLOSE_TOO_MANY_CONNECTIONS,
        events.CLOSE_UNAUTHENTICATED,
        events.CLOSE_FORBIDDEN,
    )
    assert f"{tokens.KEY_PREFIX}_" == feed.INGEST_KEY_PREFIX


# --- the loop, against scripted sessions -----------------------------------------------------------


async def _take(feed, n: int) -> list:
    taken = []
    async for event in feed:
        taken.append(event)
        if len(taken) == n:
            break
    return taken


@pytest.mark.asyncio
async def test_a_recycled_connection_resumes_at_once_and_a_dropped_one_after_a_back_off():
    sessions = [
        Session([status_frame(1), status_frame(2)], end=Close(4000)),
        Session([reply_frame("resumed", topic="status", since_seq=2, replayed=1), status_frame(3)], end=Drop()),
        Session([status_frame(3), status_frame(4)]),  # the server repeats 3: not yielded twice
    ]
    reconnect = RetryPolicy(initial_delay=0.4, max_delay=0.4)
    async with (
        feed_stub(sessions) as stub,
        AsyncMonitor(stub.url, READ_KEY, rand=lambda: 0.0) as monitor,
        monitor.follow(reconnect=reconnect) as feed,
    ):
        updates = await _take(feed, 4)
    assert [(u.seq, u.resynced) for u in updates] == [(1, True), (2, False), (3, False), (4, False)]
    paths = [h.path for h in stub.handshakes]
    assert paths == [
        "/ws/monitoring/pipeline-status",
        "/ws/monitoring/pipeline-status?since_seq=2&epoch=e1",
        "/ws/monitoring/pipeline-status?since_seq=3&epoch=e1",
    ]
    assert all(h.headers["authorization"] == f"Bearer {READ_KEY}" for h in stub.handshakes)
    recycled, dropped = stub.waits()
    assert recycled < 0.15 and dropped >= 0.2  # rand 0: half of the 0.4 s step


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("code", "key", "error"),
    [
        (4401, READ_KEY, AuthenticationFailed),
        (4403, READ_KEY, AuthenticationFailed),
        (4403, INGEST_KEY, PermissionDenied),
    ],
)
async def test_a_refusal_raises_its_typed_error_without_trying_again(code, key, error):
    async with feed_stub([Session(end=Close(code))]) as stub, AsyncMonitor(stub.url, key) as monitor:
        with pytest.raises(error) as raised:
            await _take(monitor.follow(reconnect=FAST), 1)
    assert raised.value.close_code == code and len(stub.handshakes) == 1


@pytest.mark.asyncio
async def test_too_many_connections_backs_off_then_gets_in():
    sessions = [Session(end=Close(4029)), Session(end=Close(4029)), Session([status_frame(7)])]
    async with feed_stub(sessions) as stub, AsyncMonitor(stub.url, READ_KEY, rand=lambda: 1.0) as monitor:
        (update,) = await _take(monitor.follow(reconnect=RetryPolicy(initial_delay=0.1, max_delay=1)), 1)
    assert update.seq == 7
    first, second = stub.waits()
    assert 0.1 <= first < second  # 0.1 s, then 0.2 s


@pytest.mark.asyncio
async def test_a_silent_socket_is_given_up_and_the_follower_resumes():
    sessions = [Session([status_frame(1)]), Session([status_frame(2)])]
    async with feed_stub(sessions) as stub, AsyncMonitor(stub.url, READ_KEY) as monitor:
        updates = await _take(monitor.follow(reconnect=FAST, idle_timeout=0.3), 2)
    assert [u.seq for u in updates] == [1, 2]
    assert stub.handshakes[1].path.endswith("?since_seq=1&epoch=e1")


@pytest.mark.asyncio
async def test_stale_notices_are_yielded_only_when_asked_for_and_kept_on_the_feed():
    stale = reply_frame("status_stale", topic="status", reason="no_update", last_seq=1, age_seconds=9, stale_after=6.5)
    script = [status_frame(1), stale, Pause(0.05), status_frame(2)]
    async with feed_stub([Session(script), Session(script)]) as stub, AsyncMonitor(stub.url, READ_KEY) as monitor:
        plain = monitor.follow()
        assert [type(e) for e in await _take(plain, 2)] == [StatusUpdate, StatusUpdate]
        await plain.aclose()
        noticed = monitor.follow(stale_notices=True)
        events = await _take(noticed, 2)
        assert [type(e) for e in events] == [StatusUpdate, StatusStale]
        assert noticed.stale == events[1] and noticed.stale.reason == "no_update"
        await noticed.aclose()


@pytest.mark.asyncio
async def test_iterating_again_after_a_break_goes_on_from_the_last_document():
    sessions = [Session([status_frame(1), status_frame(2)]), Session([status_frame(2), status_frame(3)])]
    async with feed_stub(sessions) as stub, AsyncMonitor(stub.url, READ_KEY) as monitor, monitor.follow() as feed:
        assert [u.seq for u in await _take(feed, 1)] == [1]
        assert [u.seq for u in await _take(feed, 2)] == [2, 3]
        assert feed.position == FeedPosition("e1", 3)
    assert stub.handshakes[1].path.endswith("?since_seq=1&epoch=e1")


@pytest.mark.asyncio
async def test_a_follower_gives_up_after_the_connects_it_was_allowed():
    async with feed_stub([]) as stub:
        url = stub.url
    async with AsyncMonitor(url, READ_KEY) as monitor:
        with pytest.raises(ConnectionFailed) as raised:
            await _take(monitor.follow(reconnect=FAST, give_up_after=3), 1)
    assert raised.value.attempts == 3


@pytest.mark.asyncio
async def test_a_url_that_is_not_the_feed_raises_at_once():
    with stub_server([], then=Reply(404, {"error": "not_found", "detail": "No such resource."})) as stub:
        async with AsyncMonitor(stub.url, READ_KEY) as monitor:
            with pytest.raises(NotFound):
                await _take(monitor.follow(reconnect=FAST), 1)
    assert len(stub.received) == 1
