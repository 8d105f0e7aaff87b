"""Client input checks without sockets: kinds, sizes, JSON, schema, rate limit and strikes."""

import json

from monitoring import events
from monitoring.feed.guard import CLOSE, QUIET, SEND, InputGuard, Refusal


def _guard(**kw) -> InputGuard:
    return InputGuard(**{"max_frame_bytes": 100, "rate": 1000, "burst": 1000, "max_strikes": 3, **kw})


def test_a_valid_message_is_parsed():
    message = _guard().parse(json.dumps({"type": "ping", "echo": "x"}))
    assert (message.type, message.echo) == (events.PING, "x")


def test_bad_frames_are_refused_with_their_code():
    guard = _guard()
    assert guard.parse(None).code == events.BINARY_NOT_SUPPORTED
    assert guard.parse("x" * 101).code == events.FRAME_TOO_LARGE
    assert guard.parse("é" * 60).code == events.FRAME_TOO_LARGE, "bytes, not characters"
    assert guard.parse("{").code == events.INVALID_JSON
    assert guard.parse('{"type": "dance"}').code == events.UNKNOWN_TYPE


def test_a_flood_is_rate_limited_and_answered_once_a_second():
    guard = _guard(rate=0.001, burst=1, max_strikes=100)
    assert not isinstance(guard.parse('{"type": "ping"}'), Refusal)
    refusal = guard.parse('{"type": "ping"}')
    assert refusal.code == events.RATE_LIMITED and refusal.throttle
    assert guard.verdict(refusal) == SEND
    assert guard.verdict(guard.parse('{"type": "ping"}')) == QUIET


def test_too_many_strikes_close_the_connection():
    guard = _guard(max_strikes=2)
    verdicts = [guard.verdict(guard.parse("{")) for _ in range(3)]
    assert verdicts == [SEND, SEND, CLOSE]
