"""Connection caps hold across server processes: the total is shared through Redis, not per process."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from tests.integration.cluster import Cluster, running_cluster

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]
CAP = 3


@pytest.fixture(scope="module")
def capped(django_db_setup, tmp_path_factory):
    with running_cluster(
        logs=tmp_path_factory.mktemp("capped"), servers=("a", "b"), broadcasters=0, WEBSOCKET_MAX_CONNECTIONS=str(CAP)
    ) as cluster:
        yield cluster


async def _open(cluster: Cluster, server: str):
    ws = await websockets.connect(f"ws://127.0.0.1:{cluster.port(server)}/ws/monitoring/pipeline-status")
    return ws


async def _first(ws) -> dict | int:
    """The first frame, or the close code if the server closed instead."""
    try:
        return json.loads(await asyncio.wait_for(ws.recv(), 10))
    except websockets.ConnectionClosed as closed:
        return closed.rcvd.code


async def test_the_total_cap_counts_connections_on_every_process(capped):
    held = [await _open(capped, "a"), await _open(capped, "a"), await _open(capped, "b")]
    for ws in held:
        assert (await _first(ws))["type"] == "pipeline_status_update"
    refused = [await _open(capped, "b"), await _open(capped, "a")]
    assert [await _first(ws) for ws in refused] == [4029, 4029]
    await held[0].close()
    await asyncio.sleep(0.3)  # the slot is released in the server's disconnect handler
    again = await _open(capped, "b")
    assert (await _first(again))["type"] == "pipeline_status_update"
    for ws in [*held[1:], again]:
        await ws.close()
