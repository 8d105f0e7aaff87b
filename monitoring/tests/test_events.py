"""Feed messages built and read in one place: topic names and their channel-layer groups, topic frames
and direct replies, and client messages and resume URLs refused with a code."""

import json

import pytest
from channels.layers import InMemoryChannelLayer

from monitoring import events, protocol
from monitoring.events import ClientMessageError, parse_client_message, parse_resume_query


@pytest.mark.parametrize("topic", ["status", "alerts", "source:gdelt", "source:local-news.v2:ua"])
def test_known_topics_are_valid(topic):
    assert events.is_valid_topic(topic)


@pytest.mark.parametrize("topic", ["", "source:", "source:-lead", "source:a b", "source:" + "x" * 101, None, 5, "stat"])
def test_anything_else_is_not_a_topic(topic):
    assert not events.is_valid_topic(topic)


def test_group_names_escape_what_channel_layers_refuse():
    assert events.group_name("source:gdelt") == "feed.source-3agdelt"
    assert events.group_name("source:local-news") == "feed.source-3alocal-2dnews"
    assert events.group_name("status") == "feed.status"


def test_no_two_topics_share_a_group():
    """A shared group would stop one topic's frames when a process leaves the other's."""
    topics = ["source:a:b", "source:a-3ab", "source:a-b", "source:a-2db", "source:" + "x" * 100, "source:" + "x" * 99]
    assert len({events.group_name(topic) for topic in topics}) == len(topics)


@pytest.mark.asyncio
@pytest.mark.parametrize("length", [1, 85, 86, 100])
async def test_every_source_topic_has_a_group_the_channel_layer_accepts(length):
    """Regression: on the in-memory layer (no Redis) a source name of 86+ characters made group_send raise."""
    topic = events.source_topic("s" * length)
    assert events.is_valid_topic(topic)
    layer = InMemoryChannelLayer()
    channel = await layer.new_channel()
    await layer.group_add(events.group_name(topic), channel)
    await layer.group_send(events.group_name(topic), {"type": "feed.frame", "topic": topic})
    assert (await layer.receive(channel))["topic"] == topic


def test_only_the_alerts_topic_carries_changes_besides_snapshots():
    assert events.frames_are_snapshots("status")
    assert events.frames_are_snapshots("source:gdelt")
    assert not events.frames_are_snapshots("alerts")
    assert events.ALERT_FIRED in events.allowed_types("alerts")


def test_a_topic_frame_marks_snapshots_and_joins_into_one_json_object():
    full = events.topic_frame_parts(topic="alerts", data={"alerts": []})
    change = events.topic_frame_parts(topic="alerts", data={"id": 3}, message_type=events.ALERT_FIRED)
    assert (full.snapshot, change.snapshot) == (True, False)
    frame = json.loads(events.join_topic_frame(change, seq=12, epoch="e1"))
    assert {k: frame[k] for k in ("type", "topic", "seq", "epoch", "data")} == {
        "type": events.ALERT_FIRED,
        "topic": "alerts",
        "seq": 12,
        "epoch": "e1",
        "data": {"id": 3},
    }


@pytest.mark.parametrize(
    ("topic", "message_type"), [("nope", None), ("status", events.ALERT_FIRED), ("source:gdelt", events.ALERTS_UPDATE)]
)
def test_a_frame_for_an_invalid_topic_or_a_type_foreign_to_it_is_refused(topic, message_type):
    with pytest.raises(ValueError):
        events.topic_frame_parts(topic=topic, data={}, message_type=message_type)


def test_a_direct_reply_is_outside_every_sequence():
    frame = json.loads(events.resync(epoch="e1", topic="status", reason="history_trimmed", latest_seq=9))
    assert (frame["type"], frame["topic"], frame["seq"], frame["epoch"]) == (events.RESYNC, None, 0, "e1")
    assert frame["data"]["reason"] == "history_trimmed"


def test_a_stale_notice_rounds_its_age_and_refuses_an_unknown_reason():
    reason = events.STALE_NO_UPDATE
    frame = json.loads(events.status_stale(epoch="e", reason=reason, last_seq=4, age_seconds=31.26, stale_after=30))
    assert frame["data"]["age_seconds"] == 31.3
    with pytest.raises(ValueError, match="unknown stale reason"):
        events.status_stale(epoch="e", reason="bored", last_seq=None, age_seconds=None, stale_after=30)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ({"type": "ping", "echo": "abc"}, protocol.Ping(echo="abc")),
        ({"type": "subscribe", "topic": "source:gdelt"}, protocol.Subscribe(topic="source:gdelt")),
        ({"type": "resume", "since_seq": 4, "epoch": "e1"}, protocol.Resume(topic="status", since_seq=4, epoch="e1")),
    ],
)
def test_client_messages_parse_into_their_classes(content, expected):
    assert parse_client_message(content) == expected


@pytest.mark.parametrize(
    ("content", "code"),
    [
        ([], events.INVALID_MESSAGE),
        ({"type": 3}, events.INVALID_MESSAGE),
        ({"type": "dance"}, events.UNKNOWN_TYPE),
        ({"type": "ping", "echo": True}, events.INVALID_MESSAGE),
        ({"type": "ping", "echo": "x" * 65}, events.INVALID_MESSAGE),
        ({"type": "subscribe"}, events.UNKNOWN_TOPIC),
        ({"type": "resume", "since_seq": True, "epoch": "e"}, events.INVALID_MESSAGE),
        ({"type": "resume", "since_seq": -1, "epoch": "e"}, events.INVALID_MESSAGE),
        ({"type": "resume", "since_seq": 1, "epoch": ""}, events.INVALID_MESSAGE),
        ({"type": "resume", "since_seq": 1, "epoch": "e", "topic": "x"}, events.UNKNOWN_TOPIC),
    ],
)
def test_bad_client_messages_are_refused_with_a_code(content, code):
    with pytest.raises(ClientMessageError) as refused:
        parse_client_message(content)
    assert refused.value.code == code


def test_a_resume_on_the_url_needs_both_parts_with_an_ascii_seq():
    assert parse_resume_query(since_seq=None, epoch=None) is None
    assert parse_resume_query(since_seq="7", epoch="e1") == (7, "e1")
    for since_seq, epoch in (("²", "e1"), ("7", None), (str(events.MAX_SEQ + 1), "e1"), ("7", "e" * 65)):
        with pytest.raises(ClientMessageError) as refused:
            parse_resume_query(since_seq=since_seq, epoch=epoch)
        assert (refused.value.code, refused.value.request_type) == (events.INVALID_MESSAGE, events.RESUME)
