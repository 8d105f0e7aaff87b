"""The broadcaster's database work per tick does not depend on how many clients are connected:
the status is computed once per tick and fanned out, never queried per connection."""

from __future__ import annotations

import json
import re

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conflict_monitor.asgi import application
from monitoring.broadcaster import AlwaysLeader, Broadcaster
from monitoring.tests.factories import DataQualityMetricFactory, PipelineRunFactory

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("feed_backend")]
PATH = "/ws/monitoring/pipeline-status"
STATUS = "pipeline_status_update"
# Literals (the window's bounds move with the clock) differ between ticks; the statements must not.
LITERAL = re.compile(r"'[^']*'|\b\d+\b")


async def open_feeds(count: int) -> list[WebsocketCommunicator]:
    feeds = []
    for _ in range(count):
        feed = WebsocketCommunicator(application, PATH)
        connected, _ = await feed.connect(timeout=5)
        assert connected
        await next_status(feed)  # the snapshot
        feeds.append(feed)
    return feeds


async def next_status(feed: WebsocketCommunicator) -> dict:
    while True:
        frame = json.loads(await feed.receive_from(timeout=5))
        if frame["type"] == STATUS:
            return frame


def _start_capture() -> CaptureQueriesContext:
    capture = CaptureQueriesContext(connection)
    capture.__enter__()
    return capture


def _stop_capture(capture: CaptureQueriesContext) -> list[str]:
    capture.__exit__(None, None, None)
    return [LITERAL.sub("?", query["sql"]) for query in capture.captured_queries]


async def queries_of_one_tick(broadcaster: Broadcaster, feeds: list[WebsocketCommunicator]) -> list[str]:
    """Every query from the start of a publish until each client has its status frame.

    ``database_sync_to_async`` runs all ORM work of this event loop in one thread, so a capture
    opened in that thread sees the broadcaster's queries and any a consumer would make per frame.
    """
    capture = await database_sync_to_async(_start_capture)()
    try:
        await broadcaster.publish_once()
        seqs = {(await next_status(feed))["seq"] for feed in feeds}
    finally:
        queries = await database_sync_to_async(_stop_capture)(capture)
    assert len(seqs) == 1, f"the clients got different ticks: {seqs}"
    return queries


async def test_one_tick_runs_the_same_queries_for_one_client_and_for_twenty():
    await database_sync_to_async(DataQualityMetricFactory.create_batch)(5, source="acled")
    await database_sync_to_async(PipelineRunFactory)(source="acled")
    broadcaster = Broadcaster(lease=AlwaysLeader(), interval=60, max_push_rate=2)
    # The first ticks open alerts and fill the anomaly cache; the steady state is what repeats.
    await broadcaster.publish_once()
    await broadcaster.publish_once()

    queries = {}
    for clients in (1, 20):
        feeds = await open_feeds(clients)
        try:
            queries[clients] = await queries_of_one_tick(broadcaster, feeds)
        finally:
            for feed in feeds:
                await feed.disconnect()

    assert queries[1], "a tick computes the status from the database"
    assert len(queries[20]) == len(queries[1])
    assert queries[20] == queries[1]
