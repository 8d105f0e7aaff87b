"""The connection inbox behaves as the asyncio.Queue it replaces does for daphne: messages come out in
order, a getter waits for the next one, and none is lost to a cancelled or competing getter."""

from __future__ import annotations

import asyncio

import pytest

from conflict_monitor.overrides.daphne import Inbox

pytestmark = pytest.mark.asyncio


async def test_messages_come_out_in_the_order_they_went_in():
    inbox = Inbox()
    for number in range(5):
        inbox.put_nowait(number)
    assert inbox.qsize() == 5
    assert [await inbox.get() for _ in range(5)] == [0, 1, 2, 3, 4]
    assert inbox.qsize() == 0


async def test_a_getter_waits_for_the_next_message():
    inbox = Inbox()
    getter = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    assert not getter.done()
    inbox.put_nowait({"type": "websocket.connect"})
    assert await asyncio.wait_for(getter, 1) == {"type": "websocket.connect"}


async def test_competing_getters_each_get_one_message():
    inbox = Inbox()
    getters = [asyncio.ensure_future(inbox.get()) for _ in range(3)]
    await asyncio.sleep(0)
    for number in range(3):
        inbox.put_nowait(number)
    assert sorted(await asyncio.wait_for(asyncio.gather(*getters), 1)) == [0, 1, 2]


async def test_a_getter_cancelled_after_being_woken_leaves_the_message_for_the_next():
    inbox = Inbox()
    first = asyncio.ensure_future(inbox.get())
    second = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    inbox.put_nowait("only")  # wakes ``first``...
    first.cancel()  # ...which is cancelled before it runs
    assert await asyncio.wait_for(second, 1) == "only"
    assert first.cancelled()


async def test_a_cancelled_waiting_getter_takes_nothing():
    inbox = Inbox()
    getter = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    getter.cancel()
    await asyncio.sleep(0)
    inbox.put_nowait("kept")
    assert await asyncio.wait_for(inbox.get(), 1) == "kept"
