"""The Lua scripts: each is a file Redis accepts, and the frame the publish script writes is, byte
for byte, the one the Python builder makes (``events.join_topic_frame``)."""

import pytest

from monitoring import events, lua
from monitoring.feed.registry import get_store


def test_every_script_is_a_file_and_every_file_is_used():
    import pathlib

    sources = "".join(
        path.read_text() for path in pathlib.Path("monitoring").rglob("*.py") if "tests" not in path.parts
    )
    for name in lua.names():
        assert f'lua.script("{name}")' in sources, f"{name}.lua is loaded nowhere"
    assert "redis.call" not in sources.replace("\\n", ""), "Lua left inside a Python string"


@pytest.mark.redis
@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("topic", "message_type", "data"),
    [
        (events.STATUS_TOPIC, None, {"overall_status": "healthy", "n": 1.5, "note": "naïve — “quoted” \\ / \u2028"}),
        (events.ALERTS_TOPIC, events.ALERT_FIRED, {"id": 7, "summary": 'a "quote" and\nnewline'}),
        ("source:gdelt", None, {"name": "gdelt", "nested": {"list": [1, None, True]}}),
    ],
)
async def test_the_lua_envelope_equals_the_python_builders_byte_for_byte(redis_feed, topic, message_type, data):
    parts = events.topic_frame_parts(topic=topic, data=data, message_type=message_type)
    store = get_store()
    for _ in range(2):
        frame = await store.publish(topic=topic, parts=parts)
        assert frame.text.encode() == events.join_topic_frame(parts, seq=frame.seq, epoch=frame.epoch).encode()
    (stored,) = (await store.since(topic=topic, epoch=frame.epoch, since_seq=frame.seq - 1, limit=10)).frames
    assert stored.text == frame.text


@pytest.mark.redis
@pytest.mark.asyncio
async def test_redis_accepts_every_script(redis_feed):
    store = get_store()
    for name in lua.names():
        sha = await store.client.script_load(lua.script(name))
        assert len(sha) == 40
