"""The database tells listeners about committed writes of metrics and runs, once per transaction."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from channels.db import database_sync_to_async

from monitoring.feed.db_changes import _conninfo, listen_for_changes

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def _run_sql(*statements: str, commit: bool = True) -> None:
    with psycopg.connect(**_conninfo("default")) as conn:
        for statement in statements:
            conn.execute(statement)
        if commit:
            conn.commit()
        else:
            conn.rollback()


async def _listen_while(action) -> int:
    heard: list[None] = []
    task = asyncio.ensure_future(listen_for_changes(on_change=lambda: heard.append(None)))
    await asyncio.sleep(0.5)  # connected and listening
    await database_sync_to_async(action)()
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return len(heard)


METRIC = (
    "INSERT INTO monitoring_dataqualitymetric (geocoding_attempts, geocoding_successes, validation_attempts, "
    "validation_passes, metric_type, source) VALUES (5, 5, 5, 5, 'batch', 'x')"
)


@pytest.mark.asyncio
async def test_a_committed_transaction_of_several_statements_is_heard_once():
    run = "INSERT INTO monitoring_pipelinerun (source, stage) VALUES ('x', 'scrape')"
    assert await _listen_while(lambda: _run_sql(METRIC, METRIC, run, "DELETE FROM monitoring_pipelinerun")) == 1


@pytest.mark.asyncio
async def test_a_rolled_back_write_is_not_heard():
    assert await _listen_while(lambda: _run_sql(METRIC, commit=False)) == 0


@pytest.mark.asyncio
async def test_each_committed_transaction_is_heard():
    assert await _listen_while(lambda: [_run_sql(METRIC) for _ in range(3)]) == 3
