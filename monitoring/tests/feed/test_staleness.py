"""The status watch: a process tells its status followers when the status stops being current."""

from __future__ import annotations

import asyncio
import json

import pytest

from monitoring import events
from monitoring.feed.frames import Frame
from monitoring.feed.staleness import StatusWatch

pytestmark = pytest.mark.asyncio


class Notices:
    def __init__(self) -> None:
        self.received: list[tuple[float, dict]] = []

    async def __call__(self, text: str) -> None:
        self.received.append((asyncio.get_running_loop().time(), json.loads(text)))

    @property
    def reasons(self) -> list[str]:
        return [notice["data"]["reason"] for _, notice in self.received]


def status_frame(seq: int) -> Frame:
    return Frame(topic="status", seq=seq, epoch="e1", text="{}")


def watch(notices: Notices, *, stale_after: float = 0.2, repeat_every: float = 0.1) -> StatusWatch:
    status_watch = StatusWatch(stale_after=stale_after, repeat_every=repeat_every, notify=notices)
    status_watch.start()
    return status_watch


async def test_no_status_for_stale_after_seconds_sends_a_no_update_notice_and_repeats_it():
    notices = Notices()
    status_watch = watch(notices)
    started = asyncio.get_running_loop().time()
    status_watch.fresh(status_frame(7))
    await asyncio.sleep(0.45)
    status_watch.stop()
    assert 3 <= len(notices.received) <= 4, notices.received
    first_at, first = notices.received[0]
    assert 0.18 <= first_at - started <= 0.3
    assert first["type"] == events.STATUS_STALE and first["topic"] is None and first["seq"] == 0
    assert first["epoch"] == "e1"
    assert first["data"]["reason"] == events.STALE_NO_UPDATE
    assert first["data"]["last_seq"] == 7 and first["data"]["stale_after"] == 0.2
    ages = [notice["data"]["age_seconds"] for _, notice in notices.received]
    assert ages == sorted(ages) and ages[0] >= 0.2


async def test_frames_more_often_than_stale_after_send_no_notice():
    notices = Notices()
    status_watch = watch(notices)
    for seq in range(1, 9):
        status_watch.fresh(status_frame(seq))
        await asyncio.sleep(0.06)
    status_watch.stop()
    assert notices.received == []
    assert status_watch.notice() is None


async def test_a_status_frame_ends_it_and_the_timeout_starts_again():
    notices = Notices()
    status_watch = watch(notices)
    await asyncio.sleep(0.25)
    assert notices.reasons == [events.STALE_NO_UPDATE]
    status_watch.fresh(status_frame(1))
    assert status_watch.notice() is None
    await asyncio.sleep(0.15)
    assert len(notices.received) == 1  # current again: the repeats stopped
    await asyncio.sleep(0.1)
    status_watch.stop()
    assert notices.reasons == [events.STALE_NO_UPDATE] * 2


async def test_a_reported_failure_is_sent_at_once_with_its_reason():
    notices = Notices()
    status_watch = watch(notices, stale_after=10)
    status_watch.fresh(status_frame(3))
    reported = asyncio.get_running_loop().time()
    status_watch.report(events.STALE_DATABASE_UNAVAILABLE)
    await asyncio.sleep(0.05)
    assert json.loads(status_watch.notice())["data"]["last_seq"] == 3
    status_watch.stop()
    assert notices.reasons == [events.STALE_DATABASE_UNAVAILABLE]
    assert notices.received[0][0] - reported < 0.05


async def test_an_unknown_reason_is_ignored():
    notices = Notices()
    status_watch = watch(notices, stale_after=10)
    status_watch.report("because")
    await asyncio.sleep(0.05)
    status_watch.stop()
    assert notices.received == [] and status_watch.notice() is None


async def test_a_failing_notify_does_not_stop_the_watch():
    calls = []

    async def flaky(text: str) -> None:
        calls.append(text)
        if len(calls) == 1:
            raise RuntimeError("a broken follower list")

    status_watch = StatusWatch(stale_after=0.05, repeat_every=0.05, notify=flaky)
    status_watch.start()
    await asyncio.sleep(0.2)
    status_watch.stop()
    assert len(calls) >= 2


async def test_restarting_forgets_what_came_before():
    """A process that left the status topic got no frames meanwhile: that gap is not staleness."""
    notices = Notices()
    status_watch = watch(notices, stale_after=0.2)
    status_watch.report(events.STALE_STATUS_FAILED)
    await asyncio.sleep(0.05)
    status_watch.stop()
    status_watch.start()
    assert status_watch.notice() is None
    await asyncio.sleep(0.1)
    status_watch.stop()
    assert notices.reasons == [events.STALE_STATUS_FAILED]
