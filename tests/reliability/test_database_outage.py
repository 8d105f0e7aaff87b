"""PostgreSQL goes away for a while and comes back, under a real server and broadcaster: REST answers
503 with a JSON reason during the outage, never a 500, and 200 again within 5 s of the database
returning, without restarting anything; the feed flags the status stale during the outage and
resumes its status frames after.

The server reaches PostgreSQL through a proxy the test cuts and restores, so the shared database
server keeps running for everything else.
"""

from __future__ import annotations

import asyncio
import json
import os
import time

import pytest
import websockets

from tests.integration.cluster import running_cluster
from tests.reliability.cut_proxy import CutProxy

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
]
# Long enough for psycopg's default backoff (1, 2, 4, 8, 16 s) to miss the 5 s recovery by far.
OUTAGE = float(os.environ.get("CHAOS_DATABASE_OUTAGE", "20"))
RECOVERY = 5.0
INTERVAL = 1.0


async def test_the_database_goes_away_and_comes_back(tmp_path):
    from django.db import connection

    db = connection.settings_dict
    proxy = CutProxy(upstream=(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432))).start()
    try:
        with running_cluster(
            logs=tmp_path,
            servers=("a",),
            broadcasters=1,
            DATABASE_URL=f"postgres://{db['USER']}@127.0.0.1:{proxy.port}/{db['NAME']}",
            DATABASE_POOL_TIMEOUT="1",
            WEBSOCKET_BROADCAST_INTERVAL=str(INTERVAL),
        ) as cluster:
            assert (await asyncio.to_thread(cluster.pipeline_status, "a"))[0] == 200
            url = f"ws://127.0.0.1:{cluster.port('a')}/ws/monitoring/pipeline-status"
            async with websockets.connect(url) as ws:
                frames: list[tuple[float, dict]] = []

                async def listen() -> None:
                    async for text in ws:
                        frames.append((time.monotonic(), json.loads(text)))

                listener = asyncio.ensure_future(listen())
                await asyncio.sleep(2 * INTERVAL)

                proxy.cut()
                cut = time.monotonic()
                during = []
                while time.monotonic() - cut < OUTAGE:
                    during.append(await asyncio.to_thread(cluster.pipeline_status, "a"))
                    await asyncio.sleep(0.5)

                stale_gauge = await asyncio.to_thread(cluster.metric, "a", "conflict_monitor_feed_status_stale")
                proxy.restore()
                back = time.monotonic()
                after = []
                while time.monotonic() - back < RECOVERY:
                    code, body = await asyncio.to_thread(cluster.pipeline_status, "a")
                    after.append((time.monotonic() - back, code))
                    if code == 200:
                        break
                    await asyncio.sleep(0.25)
                await asyncio.sleep(3 * INTERVAL)
                listener.cancel()
            stale_gauge_after = cluster.metric("a", "conflict_monitor_feed_status_stale")
            episodes = cluster.metric("a", "conflict_monitor_feed_stale_total", reason="database_unavailable")
            process, _ = cluster.servers["a"]
            assert process.poll() is None, cluster.log_tail("a")
    finally:
        proxy.stop()

    codes = {code for code, _ in during}
    assert codes <= {200, 503}, f"answers during the outage: {codes}"
    unavailable = [body for code, body in during if code == 503]
    assert unavailable, "no 503 during the outage: the proxy did not cut anything"
    assert all(body["error"] == "database_unavailable" for body in unavailable)
    assert after and after[-1][1] == 200, f"still failing {RECOVERY} s after the database returned: {after}"
    statuses_after = [m for t, m in frames if t > back and m.get("type") == "pipeline_status_update"]
    assert statuses_after, "the feed published no status after the database returned"

    # The feed says the status is stale instead of leaving the last one standing as current.
    outage = [(t - cut, m) for t, m in frames if cut <= t < back]
    notices = [(t, m) for t, m in outage if m["type"] == "status_stale"]
    assert notices, f"no status_stale during the outage: {[m['type'] for _, m in outage]}"
    reasons = {m["data"]["reason"] for _, m in notices}
    assert "database_unavailable" in reasons, reasons
    first_notice = notices[0][0]
    assert first_notice <= 1.3 * INTERVAL + 1.5, f"first status_stale {first_notice:.2f} s after the cut"
    late_statuses = [t for t, m in outage if m["type"] == "pipeline_status_update" and t > first_notice]
    assert not late_statuses, f"status frames during the outage after it was flagged stale: {late_statuses}"
    repeats = [t for t, m in notices if t > OUTAGE - 2 * INTERVAL - 1]
    assert repeats, "the stale notices stopped before the database returned"
    assert stale_gauge == 1 and stale_gauge_after == 0
    assert episodes >= 1
    print(
        f"\nPostgreSQL cut for {OUTAGE:.0f} s: {len(unavailable)} of {len(during)} status calls answered 503 "
        f"database_unavailable (the rest 200 before the pool noticed), none 500; 200 again "
        f"{after[-1][0]:.2f} s after it returned; the feed flagged the status stale {first_notice:.2f} s after "
        f"the cut ({len(notices)} status_stale frames, reasons {sorted(reasons)}), then "
        f"{len(statuses_after)} status frames after it returned"
    )
