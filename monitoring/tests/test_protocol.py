"""The typed protocol stays the one definition (its docs are generated: test_protocol_docs.py): the
JSON Schema is valid, every builder's output and every documented client example validate against the schema,
and the parser turns each client example into its class."""

import json

import jsonschema
import pytest

from monitoring import events, protocol

SCHEMA = protocol.json_schema()


def _validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator({**SCHEMA, "$ref": f"#/$defs/{name}"})


def test_the_schema_is_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("Pong", events.pong(epoch="e1", echo="abc")),
        ("Pong", events.pong(epoch="")),
        ("Error", events.error(epoch="e1", code=events.UNKNOWN_TOPIC, message="No.", request_type="resume")),
        ("Error", events.error(epoch="e1", code=events.RATE_LIMITED, message="Slow down.")),
        ("Subscribed", events.subscribed(epoch="e1", topic="source:acled", topics=["source:acled", "status"])),
        ("Unsubscribed", events.unsubscribed(epoch="e1", topic="alerts", topics=["status"])),
        ("Resync", events.resync(epoch="e1", topic="status", reason="history_trimmed", latest_seq=9)),
        ("Resumed", events.resumed(epoch="e1", topic="status", since_seq=4, replayed=2)),
        (
            "StatusStale",
            events.status_stale(epoch="e1", reason="no_update", last_seq=3, age_seconds=9.44, stale_after=6.5),
        ),
    ],
)
def test_every_reply_the_builders_make_validates(name, text):
    _validator(name).validate(json.loads(text))


def test_every_reply_class_has_a_builder_case_above():
    built = {"Pong", "Error", "Subscribed", "Unsubscribed", "Resync", "Resumed", "StatusStale"}
    assert {cls.__name__ for cls in protocol.REPLIES} == built


@pytest.mark.parametrize("cls", protocol.TOPIC_FRAMES, ids=lambda cls: cls.TYPE)
def test_topic_frames_validate(cls):
    topic = "source:acled" if cls.TOPIC == protocol.SOURCE else cls.TOPIC
    data = {
        protocol.AlertsUpdate: {"alerts": [{"id": 1}]},
        protocol.SourceStatusUpdate: {
            "source": "acled",
            "status": "healthy",
            "scraping": None,
            "data_quality": {},
            "window_hours": 24,
        },
    }.get(cls, {"id": 1})
    parts = events.topic_frame_parts(topic=topic, data=data, message_type=cls.TYPE)
    _validator(cls.__name__).validate(json.loads(events.join_topic_frame(parts, seq=5, epoch="e1")))
    assert parts.snapshot is cls.SNAPSHOT


@pytest.mark.parametrize("cls", protocol.CLIENT_REQUESTS, ids=lambda cls: cls.TYPE)
def test_each_documented_client_example_validates_and_parses_into_its_class(cls):
    example = json.loads(cls.EXAMPLE)
    _validator(cls.__name__).validate(example)
    assert type(events.parse_client_message(example)) is cls


def test_the_schema_refuses_what_the_parser_refuses():
    bad = {"type": "resume", "since_seq": -1, "epoch": "e"}
    with pytest.raises(jsonschema.ValidationError):
        _validator("Resume").validate(bad)
    with pytest.raises(events.ClientMessageError):
        events.parse_client_message(bad)


def test_the_error_codes_the_code_uses_are_the_protocols():
    used = {value for name, value in vars(events).items() if name.isupper() and value in protocol.ERROR_CODES}
    assert used == set(protocol.ERROR_CODES)
    assert set(events.CLIENT_TYPES) == set(protocol.CLIENT_BY_TYPE)
