"""Channel-layer events: each builder's event is recognised by its reader, and no reader takes
another's event."""

import time

import pytest

from monitoring.feed.frames import (
    Frame,
    frame_event,
    frame_from_event,
    is_ready_ping,
    is_status_dirty,
    ready_ping_event,
    stale_event,
    stale_reason_from_event,
    status_dirty_event,
)

FRAME = Frame("source:gdelt", 7, "0123abcd", '{"type":"source_detail"}')


def test_a_frame_survives_the_round_trip_through_its_event():
    before = time.time()
    event = frame_event(FRAME)
    assert frame_from_event(event) == FRAME
    assert before <= event["published_at"] <= time.time()


def test_a_stale_event_carries_its_reason():
    assert stale_reason_from_event(stale_event(reason="database unreachable")) == "database unreachable"
    assert stale_reason_from_event({"type": "feed.stale", "reason": 5}) is None


def test_status_dirty_and_ready_ping_are_recognised():
    assert is_status_dirty(status_dirty_event(reason="alert acknowledged"))
    assert is_ready_ping(ready_ping_event())


@pytest.mark.parametrize(
    "event",
    [stale_event(reason="x"), status_dirty_event(reason="x"), ready_ping_event(), {"type": "websocket.send"}, {}],
)
def test_no_reader_takes_an_event_of_another_kind(event):
    kind = event.get("type")
    assert (frame_from_event(event) is None) == (kind != "feed.frame")
    assert (stale_reason_from_event(event) is None) == (kind != "feed.stale")
    assert is_status_dirty(event) == (kind == "status.dirty")
    assert is_ready_ping(event) == (kind == "ready.ping")
