"""100 clients that open the live feed and never read, on a real server publishing ten times a second:
each is dropped once its backlog stays past the limit, the server's memory stays bounded, the drops
are counted, and a client that reads keeps receiving throughout."""

from __future__ import annotations

import json
import socket
import time

import pytest
from websockets.sync.client import connect

from tests.integration.cluster import running_cluster
from tests.raw_websocket import open_unread

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]
SILENT = 100
LIMIT = 64 * 1024
GRACE = 1.0
DEADLINE = 60.0
SOURCES = 150
RSS_GROWTH_LIMIT_MB = 64
FEED = "/ws/monitoring/pipeline-status"


TCP_ESTABLISHED = 1


def is_dropped(sock: socket.socket) -> bool:
    """The server ended the connection: the kernel's TCP state, so the client still reads nothing
    (a reset leaves the unread frames in the queue, where a peek would still find them)."""
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] != TCP_ESTABLISHED


def test_clients_that_never_read_are_dropped_and_memory_stays_bounded(tmp_path):
    from monitoring.tests.factories import DataQualityMetricFactory

    # Many sources make a large status frame (tens of KB), so the kernel's buffers fill in seconds.
    for number in range(SOURCES):
        DataQualityMetricFactory(source=f"source-{number:03d}", geocoding_attempts=100, geocoding_successes=90)
    with running_cluster(
        logs=tmp_path,
        servers=("a",),
        broadcasters=1,
        WEBSOCKET_BROADCAST_INTERVAL="0.1",
        WEBSOCKET_SEND_BUFFER_LIMIT=str(LIMIT),
        WEBSOCKET_SLOW_CLIENT_SECONDS=str(GRACE),
        WEBSOCKET_MAX_CONNECTIONS_PER_IP=str(2 * SILENT),
    ) as cluster:
        port = cluster.port("a")
        rss_before = cluster.rss_mb("a")
        with connect(f"ws://127.0.0.1:{port}/ws/monitoring/pipeline-status", open_timeout=10) as reader:
            silent = [open_unread(port, FEED, receive_window=4096) for _ in range(SILENT)]
            started = time.monotonic()
            received = 0
            peak = rss_before
            while time.monotonic() - started < DEADLINE:
                for _ in range(10):  # the reading client keeps up meanwhile
                    message = json.loads(reader.recv(timeout=5))
                    received += message["type"] == "pipeline_status_update"
                peak = max(peak, cluster.rss_mb("a"))
                if all(is_dropped(sock) for sock in silent):
                    break
            elapsed = time.monotonic() - started
            still_open = sum(not is_dropped(sock) for sock in silent)
            last = json.loads(reader.recv(timeout=5))
            reader_alive = last["type"] == "pipeline_status_update"
            frame_kb = len(json.dumps(last)) / 1024
        for sock in silent:
            sock.close()
        dropped = cluster.metric("a", "conflict_monitor_ws_dropped_total", reason="slow_client")
        log = (tmp_path / "a.log").read_text(errors="replace")

    assert still_open == 0, f"{still_open} of {SILENT} silent clients still connected after {DEADLINE} s"
    assert dropped == SILENT
    assert reader_alive and received > 0
    assert peak - rss_before < RSS_GROWTH_LIMIT_MB, (rss_before, peak)
    assert "Traceback" not in log
    print(
        f"\n{SILENT} clients that never read: all dropped within {elapsed:.1f} s "
        f"(limit {LIMIT // 1024} KiB for {GRACE:g} s, 10 status frames/s of {frame_kb:.0f} KB); "
        f"drops counted: {dropped:.0f}; "
        f"server RSS {rss_before:.0f} MB, peak {peak:.0f} MB; the reading client got {received} frames meanwhile"
    )
