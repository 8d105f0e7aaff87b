"""Generated hostile input on a real server's live feed: 10,000 frames (invalid JSON, wrong types,
unknown messages, huge strings, binary, all faster than the rate limit) over 100 connections. The
server never fails a socket with 1011 or drops it, logs no unhandled exception, stays up with its
memory bounded, and closes the abusive sockets with 4008."""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from monitoring.events import CLOSE_POLICY_VIOLATION
from tests.integration.cluster import running_cluster

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]
CONNECTIONS = 100
FRAMES_PER_CONNECTION = 100
RSS_GROWTH_LIMIT_MB = 64

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)
known_types = st.sampled_from(["subscribe", "unsubscribe", "resume", "ping", "get_alerts", "get_latest"])
messages = st.one_of(
    # Known message types with fields of any shape.
    st.builds(
        lambda t, extra: json.dumps({"type": t, **extra}),
        known_types,
        st.dictionaries(st.sampled_from(["topic", "since_seq", "epoch", "id", "limit"]), json_values, max_size=4),
    ),
    # Unknown types, and JSON that is not an object.
    st.builds(lambda t: json.dumps({"type": t}), st.text(alphabet=string.printable, max_size=30)),
    json_values.map(json.dumps),
    # Not JSON at all, and strings far over the frame limit.
    st.text(max_size=200),
    st.integers(min_value=17_000, max_value=200_000).map(lambda n: '{"type":"ping","pad":"' + "x" * n + '"}'),
    st.binary(min_size=1, max_size=512),
)


@pytest.fixture(scope="module")
def cluster(django_db_setup, tmp_path_factory):
    with running_cluster(
        logs=tmp_path_factory.mktemp("hostile"), servers=("a",), broadcasters=1, WEBSOCKET_BROADCAST_INTERVAL="1"
    ) as cluster:
        yield cluster


def test_generated_hostile_frames_never_break_the_server(cluster):
    url = f"ws://127.0.0.1:{cluster.port('a')}/ws/monitoring/pipeline-status"
    closes: list[int | None] = []
    sent = 0
    rss_before = cluster.rss_mb("a")
    policy_closes_before = cluster.metric("a", "conflict_monitor_ws_policy_closes_total")

    @settings(max_examples=CONNECTIONS, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(frames=st.lists(messages, min_size=FRAMES_PER_CONNECTION, max_size=FRAMES_PER_CONNECTION))
    def one_connection(frames):
        nonlocal sent
        with connect(url, max_size=None, compression=None, open_timeout=10) as ws:
            try:
                for frame in frames:
                    ws.send(frame)
                    sent += 1
                while True:  # read what the server answers until it closes or goes quiet
                    ws.recv(timeout=1.0)
            except TimeoutError:
                closes.append(1000)  # still open after everything: the client closes normally
            except ConnectionClosed as closed:
                closes.append(closed.rcvd.code if closed.rcvd else None)

    one_connection()
    rss_after = cluster.rss_mb("a")
    process, _ = cluster.servers["a"]
    log = (cluster.logs / "a.log").read_text(errors="replace")
    policy_closes = cluster.metric("a", "conflict_monitor_ws_policy_closes_total") - policy_closes_before
    refused = {
        code: cluster.metric("a", "conflict_monitor_ws_refused_frames_total", code=code)
        for code in ("invalid_json", "invalid_message", "unknown_type", "binary_not_supported", "rate_limited")
    }

    assert process.poll() is None, cluster.log_tail("a")
    assert sent >= CONNECTIONS * 20  # every connection got at least past the rate limit's burst
    assert 1011 not in closes and None not in closes, sorted(set(closes), key=str)
    assert set(closes) <= {CLOSE_POLICY_VIOLATION, 1000}, sorted(set(closes), key=str)
    assert closes.count(CLOSE_POLICY_VIOLATION) >= CONNECTIONS // 2  # floods are closed as abuse
    assert "Traceback" not in log and "Exception inside application" not in log, cluster.log_tail("a", 80)
    assert rss_after - rss_before < RSS_GROWTH_LIMIT_MB, (rss_before, rss_after)
    # The counters tell an operator what the clients were told.
    assert policy_closes == closes.count(CLOSE_POLICY_VIOLATION), (policy_closes, closes.count(CLOSE_POLICY_VIOLATION))
    assert all(refused.values()), refused
    print(
        f"\n{sent:,} generated frames over {len(closes)} connections; closes: "
        f"{closes.count(CLOSE_POLICY_VIOLATION)} with 4008, {closes.count(1000)} left open (closed by the client); "
        f"0 with 1011; server RSS {rss_before:.0f} -> {rss_after:.0f} MB; counted: {policy_closes:.0f} policy "
        f"closes, refused frames {', '.join(f'{code} {n:.0f}' for code, n in refused.items())}"
    )
