"""Redis stops for a while and comes back empty, under two servers, two broadcasters and live clients:
the servers stay up, REST keeps answering from PostgreSQL, sockets stay open or close with 4000
(reconnect), and within 10 s of Redis returning every client receives again, each either with every
frame in sequence or after a `resync`.

The scenario runs its own redis-server on a free port, so the shared one is never stopped.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time

import pytest
import redis
import websockets

from tests.integration.cluster import Cluster, free_port, running_cluster

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
]
INTERVAL = 1.0
# The 30 s outage; CHAOS_REDIS_OUTAGE shortens it for a quick local run.
OUTAGE = float(os.environ.get("CHAOS_REDIS_OUTAGE", "30"))
RECOVERY = 10.0
CLIENTS_PER_SERVER = 5


class PrivateRedis:
    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        server = shutil.which("redis-server")
        assert server, "redis-server is not installed"
        argv = [server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(self.url).ping()
                return
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "the private redis-server did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def private_redis():
    server = PrivateRedis()
    server.start()
    yield server
    server.stop()


class Watcher:
    """One live client that reconnects on a 4000 close, as the dashboard does, and records what it saw."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.frames: list[tuple[float, dict]] = []
        self.closes: list[int | None] = []
        self.faults: list[str] = []
        self.task: asyncio.Task | None = None

    async def run(self) -> None:
        while True:
            try:
                async with websockets.connect(self.url, open_timeout=5) as ws:
                    last: tuple[str, int] | None = None
                    async for text in ws:
                        message = json.loads(text)
                        self.frames.append((time.monotonic(), message))
                        if message["type"] == "resync" and message["data"]["topic"] == "status":
                            last = None  # the snapshot that follows starts the count again
                            continue
                        if message.get("topic") != "status":
                            continue
                        if last is not None and message["epoch"] == last[0] and message["seq"] != last[1] + 1:
                            self.faults.append(f"seq {last[1]} -> {message['seq']} without a resync")
                        if last is not None and message["epoch"] != last[0]:
                            self.faults.append(f"epoch {last[0]} -> {message['epoch']} without a resync")
                        last = (message["epoch"], message["seq"])
            except websockets.ConnectionClosed as closed:
                self.closes.append(closed.rcvd.code if closed.rcvd else None)
            except (TimeoutError, OSError, websockets.InvalidHandshake):
                self.closes.append(None)
            await asyncio.sleep(0.5)

    def status_frames_after(self, moment: float) -> list[dict]:
        return [m for t, m in self.frames if t > moment and m.get("type") == "pipeline_status_update"]

    def stale_notices_between(self, start: float, end: float) -> list[dict]:
        return [m for t, m in self.frames if start < t < end and m.get("type") == "status_stale"]


def frames_sent(cluster: Cluster, server: str) -> float:
    return cluster.metric(server, "conflict_monitor_ws_frames_sent_total")


async def test_redis_down_for_a_while_and_back_empty(private_redis, tmp_path):
    with running_cluster(
        logs=tmp_path,
        servers=("a", "b"),
        broadcasters=2,
        REDIS_URL=private_redis.url,
        WEBSOCKET_BROADCAST_INTERVAL=str(INTERVAL),
        REDIS_SOCKET_TIMEOUT="2",
    ) as cluster:
        path = "/ws/monitoring/pipeline-status"
        watchers = [
            Watcher(f"ws://127.0.0.1:{cluster.port(server)}{path}")
            for server in ("a", "b")
            for _ in range(CLIENTS_PER_SERVER)
        ]
        for watcher in watchers:
            watcher.task = asyncio.ensure_future(watcher.run())
        try:
            await asyncio.sleep(3 * INTERVAL)
            assert all(w.status_frames_after(0) for w in watchers), "not every client received before the fault"

            sent_before = {s: await asyncio.to_thread(frames_sent, cluster, s) for s in ("a", "b")}
            private_redis.stop()
            stopped = time.monotonic()
            rest_during = []
            while time.monotonic() - stopped < OUTAGE:
                for server in ("a", "b"):
                    rest_during.append(await asyncio.to_thread(cluster.pipeline_status, server))
                await asyncio.sleep(1.0)
            for server in ("a", "b"):
                process, _ = cluster.servers[server]
                assert process.poll() is None, f"{server} exited:\n{cluster.log_tail(server)}"

            private_redis.start()  # empty: no lease, no history, no connection counts
            back = time.monotonic()
            deadline = back + RECOVERY
            while time.monotonic() < deadline and not all(w.status_frames_after(back) for w in watchers):
                await asyncio.sleep(0.2)
            recovered = time.monotonic() - back
            waiting = [w.url for w in watchers if not w.status_frames_after(back)]
            sent_after = {s: await asyncio.to_thread(frames_sent, cluster, s) for s in ("a", "b")}
        finally:
            for watcher in watchers:
                watcher.task.cancel()
            await asyncio.gather(*(w.task for w in watchers), return_exceptions=True)

        logs = {name: cluster.log_tail(name, 60) for name in ("a", "b")}
    assert not waiting, f"{len(waiting)} clients received nothing within {RECOVERY} s of Redis returning: {logs}"
    codes = {code for w in watchers for code in w.closes}
    assert codes <= {4000, None}, f"closes other than 4000 (reconnect) or a dropped connection: {codes}"
    faults = [fault for w in watchers for fault in w.faults]
    assert not faults, faults
    # conflict_monitor_ws_frames_sent_total moved on both servers: frames flow through each again.
    assert all(sent_after[s] >= sent_before[s] + CLIENTS_PER_SERVER for s in ("a", "b")), (sent_before, sent_after)
    statuses = {code for code, _ in rest_during}
    assert statuses == {200}, f"REST answered {statuses} while Redis was down"
    # No status can be published without Redis: each server tells its clients theirs is stale.
    told = [w.stale_notices_between(stopped, back) for w in watchers]
    assert all(told), f"{sum(not t for t in told)} clients were not told their status was stale during the outage"
    assert {m["data"]["reason"] for notices in told for m in notices} == {"no_update"}
    resyncs = sum(m["type"] == "resync" for w in watchers for _, m in w.frames)
    print(
        f"\nRedis down {OUTAGE:.0f} s; every client told its status was stale during the outage "
        f"({min(map(len, told))}-{max(map(len, told))} status_stale each); receiving again {recovered:.1f} s after "
        f"it returned, in sequence ({resyncs} resyncs); closes seen: {sorted(codes, key=str)}; REST calls during "
        f"the outage: {len(rest_during)}, all 200"
    )
