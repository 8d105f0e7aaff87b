"""Connection churn soak: clients connect, subscribe, resume, read and leave (cleanly or by dropping
the TCP connection) in a loop for ``CHAOS_SOAK_SECONDS`` against a real server, while a few clients
stay connected throughout. After warm-up the server's resident memory grows by less than 5 %,
every socket it opened is released, and the clients that stayed got every status in sequence.

``make test`` runs a two-minute version; ``make chaos`` runs it for an hour.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time

import pytest
import websockets

from tests.integration.cluster import running_cluster

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]
DURATION = float(os.environ.get("CHAOS_SOAK_SECONDS", "120"))
WARM_UP = max(30.0, DURATION / 10)
WINDOW = min(30.0, DURATION / 8)  # RSS is compared as medians over a window after warm-up and at the end
RSS_GROWTH_LIMIT = 0.05
CHURNERS = 16
STAYING = 5
MAX_AGE = max(40.0, DURATION / 3)
INTERVAL = 2.0
STATUS = "pipeline_status_update"
TOPICS = ("alerts", "source:acled", "source:gdelt")


class Churn:
    def __init__(self, url: str) -> None:
        self.url = url
        self.sessions = 0
        self.resumed = 0
        self.dropped = 0
        self.failures: list[str] = []

    async def run(self, worker: int, stop: asyncio.Event) -> None:
        position: tuple[int, str] | None = None
        cycle = 0
        while not stop.is_set():
            cycle += 1
            query = "" if position is None or cycle % 3 else f"?since_seq={position[0]}&epoch={position[1]}"
            try:
                position = await self._session(query, subscribe=TOPICS[(worker + cycle) % len(TOPICS)], cycle=cycle)
            except Exception as exc:  # every failure is a finding: the assertion lists them
                self.failures.append(f"{type(exc).__name__}: {exc}"[:200])
                await asyncio.sleep(0.5)

    async def _session(self, query: str, *, subscribe: str, cycle: int) -> tuple[int, str]:
        ws = await websockets.connect(self.url + query, open_timeout=20, close_timeout=5)
        try:
            first = json.loads(await asyncio.wait_for(ws.recv(), 20))
            if query:
                assert first["type"] in ("resumed", "resync"), first["type"]
                self.resumed += 1
            else:
                assert first["type"] == STATUS, first["type"]
            if cycle % 2:
                await ws.send(json.dumps({"type": "subscribe", "topic": subscribe}))
                while json.loads(await asyncio.wait_for(ws.recv(), 20))["type"] != "subscribed":
                    pass
            position = (first["seq"], first["epoch"]) if first["type"] == STATUS else None
            self.sessions += 1
            if cycle % 5 == 0:
                ws.transport.abort()  # gone without a close frame, as a lost network leaves it
                self.dropped += 1
        finally:
            await ws.close()
        return position or await self._latest()

    async def _latest(self) -> tuple[int, str]:
        async with websockets.connect(self.url, open_timeout=20) as ws:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 20))
            return frame["seq"], frame["epoch"]


async def stay(url: str, seen: list[dict], recycled: list[int], stop: asyncio.Event) -> None:
    """A client that stays for the whole soak: every status frame, in order. The server recycles its
    connection at WEBSOCKET_MAX_CONNECTION_AGE (4000); it reconnects at once and resumes, as
    docs/protocol.md asks, so the sequence runs on through the replayed frames."""
    query = ""
    while not stop.is_set():
        async with websockets.connect(url + query, open_timeout=20) as ws:
            try:
                while not stop.is_set():
                    try:
                        frame = json.loads(await asyncio.wait_for(ws.recv(), 1.0))
                    except TimeoutError:
                        continue
                    if frame["type"] in (STATUS, "resync", "status_stale"):
                        seen.append(frame)
            except websockets.ConnectionClosed as closed:
                if closed.rcvd is None or closed.rcvd.code != 4000:
                    raise
                recycled.append(closed.rcvd.code)
                last = next(f for f in reversed(seen) if f["type"] == STATUS)
                query = f"?since_seq={last['seq']}&epoch={last['epoch']}"


def sequence_faults(frames: list[dict]) -> list[str]:
    faults = []
    last = None
    for frame in frames:
        if frame["type"] == "resync":
            last = None
        elif frame["type"] == STATUS:
            if last is not None and (frame["epoch"], frame["seq"]) != (last["epoch"], last["seq"] + 1):
                faults.append(f"{last['seq']} -> {frame['seq']}")
            last = frame
    return faults


@pytest.mark.timeout(DURATION + 300)
async def test_connection_churn_leaves_memory_and_sockets_where_they_were(tmp_path):
    with running_cluster(
        logs=tmp_path,
        servers=("a",),
        broadcasters=1,
        WEBSOCKET_BROADCAST_INTERVAL=str(INTERVAL),
        WEBSOCKET_MAX_CONNECTIONS_PER_IP="1000",
        # The clients that stay are recycled (4000) and resume a few times during the soak.
        WEBSOCKET_MAX_CONNECTION_AGE=str(MAX_AGE),
    ) as cluster:
        url = f"ws://127.0.0.1:{cluster.port('a')}/ws/monitoring/pipeline-status"
        stop = asyncio.Event()
        staying = [[] for _ in range(STAYING)]
        recycled: list[int] = []
        stayers = [asyncio.ensure_future(stay(url, seen, recycled, stop)) for seen in staying]
        churn = Churn(url)
        churners = [asyncio.ensure_future(churn.run(worker, stop)) for worker in range(CHURNERS)]

        samples: list[tuple[float, float]] = []  # (seconds since start, RSS MB)
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < DURATION:
            samples.append((elapsed, await asyncio.to_thread(cluster.rss_mb, "a")))
            await asyncio.sleep(1.0)
        stop.set()
        await asyncio.gather(*churners, *stayers)
        await asyncio.sleep(2 * INTERVAL)  # closes in flight settle
        open_after = await asyncio.to_thread(cluster.metric, "a", "conflict_monitor_ws_connections")
        refused = await asyncio.to_thread(cluster.metric, "a", "conflict_monitor_ws_refused_total", reason="ip_cap")
        process, _ = cluster.servers["a"]
        assert process.poll() is None, cluster.log_tail("a")
        log = (cluster.logs / "a.log").read_text(errors="replace")

    after_warm_up = [rss for at, rss in samples if WARM_UP <= at < WARM_UP + WINDOW]
    at_end = [rss for at, rss in samples if at >= DURATION - WINDOW]
    baseline, final = statistics.median(after_warm_up), statistics.median(at_end)
    growth = (final - baseline) / baseline
    steady = [(at, rss) for at, rss in samples if at >= WARM_UP]
    slope = statistics.linear_regression([at for at, _ in steady], [rss for _, rss in steady]).slope * 3600
    statuses = [sum(f["type"] == STATUS for f in seen) for seen in staying]
    stale = sum(f["type"] == "status_stale" for seen in staying for f in seen)
    faults = [fault for seen in staying for fault in sequence_faults(seen)]
    rate = churn.sessions / DURATION

    assert not churn.failures, f"{len(churn.failures)} failed sessions, e.g. {churn.failures[:5]}"
    assert churn.sessions >= DURATION, f"only {churn.sessions} sessions in {DURATION:.0f} s"
    assert open_after == 0, f"{open_after:.0f} sockets still counted open after every client left"
    assert refused == 0
    assert not faults, f"status sequence broken for a client that stayed: {faults[:10]}"
    assert min(statuses) >= DURATION / INTERVAL * 0.8, statuses
    assert len(recycled) >= STAYING, f"only {len(recycled)} recycles of the clients that stayed"
    assert "Traceback" not in log, cluster.log_tail("a", 80)
    assert growth < RSS_GROWTH_LIMIT, (
        f"RSS {baseline:.1f} -> {final:.1f} MB after warm-up (+{growth:.1%}; trend {slope:+.1f} MB/h)"
    )
    print(
        f"\nchurn soak {DURATION:.0f} s: {churn.sessions:,} sessions ({rate:.0f}/s; {churn.resumed:,} resumed on the "
        f"URL, {churn.dropped:,} dropped without a close frame), 0 failed; {STAYING} clients that stayed got "
        f"{min(statuses)}-{max(statuses)} statuses each in sequence, across {len(recycled)} recycles (4000) and "
        f"resumes ({stale} status_stale); 0 sockets left open; "
        f"server RSS {samples[0][1]:.1f} MB at start, {baseline:.1f} after {WARM_UP:.0f} s warm-up, {final:.1f} at "
        f"the end (+{growth:.1%}, trend {slope:+.1f} MB/h, peak {max(rss for _, rss in samples):.1f})"
    )
