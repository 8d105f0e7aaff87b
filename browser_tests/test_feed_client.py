"""The connection module's rules, run in Chromium against a scripted socket (no server behind it)."""

from __future__ import annotations

import pytest

# A WebSocket stand-in the test drives by hand: open(), deliver(frame), drop(code).
FAKE_SOCKET = """
class FakeSocket {
  static all = [];
  constructor(url) {
    Object.assign(this, { url, readyState: 0, sent: [], closed: false });
    FakeSocket.all.push(this);
  }
  send(text) { this.sent.push(JSON.parse(text)); }
  close() { this.readyState = 3; this.closed = true; }
  open() { this.readyState = 1; this.onopen?.(); }
  deliver(frame) { this.onmessage?.({ data: JSON.stringify(frame) }); }
  drop(code = 1006) { this.readyState = 3; this.onclose?.({ code }); }
}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const frame = (seq, n, epoch = "e1") =>
  ({ type: "pipeline_status_update", topic: "status", seq, epoch, timestamp: "", data: { n } });
"""


@pytest.fixture
def module_page(open_page):
    """Any page of the site will do: the module is imported from the same origin."""
    return open_page("/api/v1/monitoring/health", favicon=True)


def run(page, body: str):
    return page.evaluate(
        f"""async () => {{
            const {{ FeedClient, backoffDelay }} = await import("/static/monitoring/feed-client.js");
            const {{ honestStatus }} = await import("/static/monitoring/status-view.js");
            {FAKE_SOCKET}
            {body}
        }}"""
    )


def test_backoff_doubles_from_one_second_to_thirty_with_jitter(module_page):
    script = "return [1, 2, 3, 4, 5, 6, 7, 12].map((n) => [backoffDelay(n, () => 0), backoffDelay(n, () => 1)]);"
    bounds = run(module_page, script)
    assert bounds == [
        [500, 1000],
        [1000, 2000],
        [2000, 4000],
        [4000, 8000],
        [8000, 16000],
        [15000, 30000],
        [15000, 30000],
        [15000, 30000],
    ]


def test_frames_resync_resume_polling_and_recovery(module_page):
    result = run(
        module_page,
        """
        const statuses = [], states = [];
        let polls = 0;
        const client = new FeedClient({
          url: "ws://feed.invalid/ws", statusUrl: "/status", heartbeatMs: 60000, pollMs: 60000,
          WebSocketImpl: FakeSocket, random: () => 0,
          fetchImpl: async () => { polls += 1; return { ok: true, json: async () => ({ n: "rest" }) }; },
          onStatus: (doc, meta) => statuses.push(`${doc.n}/${meta.via}`),
          onState: (s) => states.push(s.state === "reconnecting" ? `reconnecting ${s.attempt}` : s.state),
        });
        client.start();
        const first = FakeSocket.all[0];
        first.open();
        for (const f of [frame(5, "a"), frame(6, "b"), frame(6, "duplicate"), frame(4, "old")]) first.deliver(f);
        first.deliver({ type: "resync", topic: null, seq: 0, epoch: "e2",
                        data: { topic: "status", reason: "epoch_changed", latest_seq: 1 } });
        first.deliver(frame(1, "snapshot", "e2"));
        first.drop();
        await sleep(600);                 // attempt 1 after 0.5 s
        const resumeUrl = FakeSocket.all[1].url;
        FakeSocket.all[1].drop();         // attempt 2 after 1 s
        await sleep(1100);
        FakeSocket.all[2].drop();         // third failure: polling starts, attempt 3 after 2 s
        await sleep(50);
        const whilePolling = { state: client.state, polls };
        await sleep(2000);
        FakeSocket.all[3].open();
        const afterOpen = { state: client.state, polling: client.polling, timer: client.timers.poll };
        client.stop();
        return { subscribe: first.sent, statuses, resumeUrl, states, whilePolling, afterOpen,
                 sockets: FakeSocket.all.length };
        """,
    )
    assert result["subscribe"] == [{"type": "subscribe", "topic": "alerts"}]
    assert result["statuses"][:3] == ["a/socket", "b/socket", "snapshot/socket"]  # duplicates and old frames dropped
    assert result["resumeUrl"] == "ws://feed.invalid/ws?since_seq=1&epoch=e2"
    assert result["states"][:4] == ["connecting", "live", "reconnecting 1", "reconnecting 2"]
    assert result["whilePolling"] == {"state": "polling", "polls": 1}
    assert result["afterOpen"] == {"state": "live", "polling": False, "timer": None}
    assert result["statuses"][-1] == "rest/rest"
    assert result["states"][-1] == "stopped"


def test_a_silent_socket_is_dead_after_the_heartbeat_and_a_paused_client_keeps_nothing(module_page):
    result = run(
        module_page,
        """
        const client = new FeedClient({
          url: "ws://feed.invalid/ws", statusUrl: "/status", heartbeatMs: 300, pollMs: 60000,
          WebSocketImpl: FakeSocket, random: () => 0, fetchImpl: async () => ({ ok: false, status: 503 }),
        });
        client.start();
        FakeSocket.all[0].open();
        FakeSocket.all[0].deliver(frame(1, "a"));
        await sleep(200);
        const aliveAt200 = client.state;
        await sleep(250);
        const afterSilence = { state: client.state, closed: FakeSocket.all[0].closed };
        client.pause();
        const timers = Object.values(client.timers).filter((t) => t !== null).length;
        await sleep(700);
        return { aliveAt200, afterSilence, timers, sockets: FakeSocket.all.length, state: client.state };
        """,
    )
    assert result["aliveAt200"] == "live"
    assert result["afterSilence"] == {"state": "reconnecting", "closed": True}
    assert result["timers"] == 0
    assert result["sockets"] == 1  # no reconnect once paused
    assert result["state"] == "paused"


def test_the_page_never_claims_healthy_on_stale_or_missing_data(module_page):
    verdicts = run(
        module_page,
        """
        const doc = (status, stale) => ({ overall_status: status, window_hours: 24, alerts: [],
          data_quality: { status, stale, last_updated: new Date(Date.now() - 3 * 3600e3).toISOString() },
          scraping_health: { status: "healthy", stale_sources: 0 } });
        const now = Date.now();
        return [
          honestStatus({ doc: doc("healthy", false), live: true, lastDataAt: now - 60e3, now, pollMs: 30e3 }).status,
          honestStatus({ doc: doc("degraded", true), live: true, lastDataAt: now, now, pollMs: 30e3 }).status,
          honestStatus({ doc: doc("healthy", false), live: false, lastDataAt: now - 61e3, now, pollMs: 30e3 }).status,
          honestStatus({ doc: doc("healthy", false), live: false, lastDataAt: now - 59e3, now, pollMs: 30e3 }).status,
          honestStatus({ doc: null, live: true, lastDataAt: null, now, pollMs: 30e3 }).status,
          honestStatus({ doc: doc("critical", true), live: true, lastDataAt: now, now, pollMs: 30e3 }).status,
          honestStatus({ doc: doc("healthy", false), live: true, lastDataAt: now, now, pollMs: 30e3,
                         stale: { reason: "database_unavailable", age_seconds: 7, at: now - 3000 } }).reason,
        ];
        """,
    )
    assert verdicts[:6] == ["healthy", "stale", "unknown", "healthy", "unknown", "critical"]
    assert verdicts[6] == (
        "The status has not been updated for 10 s: the monitor cannot reach its database. Last known: Healthy."
    )


def test_a_stale_notice_is_reported_unless_the_client_already_has_a_newer_status(module_page):
    result = run(
        module_page,
        """
        const notices = [];
        const client = new FeedClient({
          url: "ws://feed.invalid/ws", statusUrl: "/status", heartbeatMs: 60000, pollMs: 60000,
          WebSocketImpl: FakeSocket, random: () => 0, fetchImpl: async () => ({ ok: false, status: 503 }),
          onStale: (data) => notices.push(data.last_seq),
        });
        client.start();
        const socket = FakeSocket.all[0];
        socket.open();
        socket.deliver(frame(5, "a"));
        const stale = (lastSeq) => ({ type: "status_stale", topic: null, seq: 0, epoch: "e1", timestamp: "",
          data: { topic: "status", reason: "no_update", last_seq: lastSeq, age_seconds: 7, stale_after: 6.5 } });
        socket.deliver(stale(5));
        socket.deliver(stale(4));   // crossed a newer status: void
        socket.deliver(stale(null));
        client.stop();
        return notices;
        """,
    )
    assert result == [5, None]
