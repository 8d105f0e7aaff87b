"""High availability: several broadcasters share Redis; a lease keeps exactly one active."""

from __future__ import annotations

import asyncio

import pytest

from monitoring.broadcaster import build_broadcaster
from monitoring.tests.test_broadcaster import _run, _until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_feed")]


@pytest.mark.redis
@pytest.mark.asyncio
async def test_with_redis_exactly_one_broadcaster_is_active_and_a_standby_takes_over(settings):
    settings.WEBSOCKET_BROADCAST_INTERVAL = 0.4
    first, second = build_broadcaster(), build_broadcaster()
    stop_first, task_first = await _run(first)
    stop_second, task_second = await _run(second)
    await asyncio.sleep(1.2)
    assert first.active != second.active
    active, standby = (first, second) if first.active else (second, first)
    task, stop = (task_first, stop_first) if active is first else (task_second, stop_second)
    standby_ticks = standby.ticks
    assert standby_ticks == 0 and active.ticks >= 2
    # A crash: the active one stops without releasing its lease.
    active.lease.release = _noop
    task.cancel()
    took = await _until(lambda: standby.active, timeout=5)
    assert took <= 2 * 0.4 + 0.2
    await _until(lambda: standby.ticks > 0, timeout=2)
    stop_first.set(), stop_second.set()
    await asyncio.gather(task_first, task_second, return_exceptions=True)


async def _noop() -> None:
    return None
