"""Builders for the live feed's server frames and the parser of client input, from the one typed
definition of every message (``monitoring.protocol``). Nothing else builds message dicts by hand.

Server frames share one envelope::

    {"type": str, "topic": str | None, "seq": int, "epoch": str, "timestamp": ISO-8601 UTC, "data": {...}}

Topic frames (status, alerts, per-source) carry the topic's ``seq`` (1, 2, 3, ... per epoch),
assigned once by the publisher. Direct replies (pong, error, ...) carry ``topic: null`` and
``seq: 0``: they are not part of any sequence. See docs/protocol.md.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone

from monitoring import protocol
from monitoring.selectors import isoformat

# --- Topics ---------------------------------------------------------------------------------
STATUS_TOPIC = "status"
ALERTS_TOPIC = "alerts"
SOURCE_TOPIC_PREFIX = "source:"
_SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
_MAX_GROUP_NAME = 100  # channel layers refuse group names of 100 characters or more

# --- Server -> client types (from monitoring.protocol) ---------------------------------------------
PIPELINE_STATUS_UPDATE = protocol.PipelineStatusUpdate.TYPE
SOURCE_STATUS_UPDATE = protocol.SourceStatusUpdate.TYPE
ALERTS_UPDATE = protocol.AlertsUpdate.TYPE
ALERT_FIRED = protocol.AlertFired.TYPE
ALERT_UPDATED = protocol.AlertUpdated.TYPE
ALERT_ACKNOWLEDGED = protocol.AlertAcknowledged.TYPE
ALERT_RESOLVED = protocol.AlertResolved.TYPE
ALERT_CHANGE_TYPES = {
    "fired": ALERT_FIRED,
    "updated": ALERT_UPDATED,
    "acknowledged": ALERT_ACKNOWLEDGED,
    "resolved": ALERT_RESOLVED,
}
PONG = protocol.Pong.TYPE
ERROR = protocol.Error.TYPE
RESYNC = protocol.Resync.TYPE
SUBSCRIBED = protocol.Subscribed.TYPE
UNSUBSCRIBED = protocol.Unsubscribed.TYPE
RESUMED = protocol.Resumed.TYPE
STATUS_STALE = protocol.StatusStale.TYPE

# --- Why the status is stale (``status_stale`` frames) ------------------------------------------
STALE_NO_UPDATE, STALE_DATABASE_UNAVAILABLE, STALE_STATUS_FAILED = protocol.STALE_REASONS
STALE_REASONS = protocol.STALE_REASONS

# --- Client -> server types -----------------------------------------------------------------
PING = protocol.Ping.TYPE
SUBSCRIBE = protocol.Subscribe.TYPE
UNSUBSCRIBE = protocol.Unsubscribe.TYPE
GET_STATUS = protocol.GetStatus.TYPE
GET_ALERTS = protocol.GetAlerts.TYPE
RESUME = protocol.Resume.TYPE
CLIENT_TYPES = tuple(cls.TYPE for cls in protocol.CLIENT_REQUESTS)

# --- Error codes (in ``error`` frames) --------------------------------------------------------
INVALID_JSON = "invalid_json"
INVALID_MESSAGE = "invalid_message"
UNKNOWN_TYPE = "unknown_type"
BINARY_NOT_SUPPORTED = "binary_not_supported"
FRAME_TOO_LARGE = "frame_too_large"
RATE_LIMITED = "rate_limited"
UNKNOWN_TOPIC = "unknown_topic"
UNAVAILABLE = "unavailable"

# --- Close codes ------------------------------------------------------------------------------
CLOSE_RECONNECT = 4000  # connection reached its maximum age or the server is draining: reconnect and resume
CLOSE_POLICY_VIOLATION = 4008  # repeated abuse (invalid frames, floods)
CLOSE_TOO_MANY_CONNECTIONS = 4029  # global or per-IP connection cap reached
CLOSE_UNAUTHENTICATED = 4401  # no session, ticket or public read
CLOSE_FORBIDDEN = 4403  # authenticated but not allowed

MAX_SEQ = 2**53  # exact in JavaScript numbers


def _family(topic: str) -> str:
    return topic if topic in (STATUS_TOPIC, ALERTS_TOPIC) else protocol.SOURCE


def topic_type(topic: str) -> str:
    """The snapshot type of a topic: the frame that carries its whole current state."""
    family = _family(topic)
    return next(cls.TYPE for cls in protocol.TOPIC_FRAMES if family == cls.TOPIC and cls.SNAPSHOT)


def allowed_types(topic: str) -> set[str]:
    family = _family(topic)
    return {cls.TYPE for cls in protocol.TOPIC_FRAMES if family == cls.TOPIC}


def frames_are_snapshots(topic: str) -> bool:
    """Whether every frame on ``topic`` carries its whole state (all but alerts, which also has changes)."""
    return allowed_types(topic) == {topic_type(topic)}


def is_valid_topic(topic: Any) -> bool:
    if topic in (STATUS_TOPIC, ALERTS_TOPIC):
        return True
    return (
        isinstance(topic, str)
        and topic.startswith(SOURCE_TOPIC_PREFIX)
        and bool(_SOURCE_NAME.match(topic[len(SOURCE_TOPIC_PREFIX) :]))
    )


def source_topic(source: str) -> str:
    return f"{SOURCE_TOPIC_PREFIX}{source}"


def group_name(topic: str) -> str:
    """Channel-layer group for a topic: one per topic (no two topics share one), within what group names
    allow (ASCII letters, digits, '-', '_', '.', fewer than 100 characters). Every other character,
    '-' included, is escaped as '-' and its two hex digits; a name too long for that is hashed."""
    name = "feed." + re.sub(r"[^A-Za-z0-9_.]", lambda m: f"-{ord(m.group()):02x}", topic)
    if len(name) < _MAX_GROUP_NAME:
        return name
    return "feed.h." + hashlib.sha256(topic.encode()).hexdigest()


def encode(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# --- Topic frames: split so the publisher can insert seq and epoch without re-serialising data ----
@dataclass(frozen=True)
class TopicFrameParts:
    """JSON fragments of a topic frame; the store joins them with the seq and epoch it assigns.

    ``snapshot`` marks a frame that carries the topic's whole state (its :func:`topic_type`): the
    store keeps the latest one apart from the history, because on the alerts topic the latest
    frame is often a single change (``alert_fired``) that a new subscriber cannot start from.
    """

    type_json: str
    topic_json: str
    timestamp_json: str
    data_json: str
    snapshot: bool


def topic_frame_parts(
    *, topic: str, data: dict[str, Any], message_type: str | None = None, at: datetime | None = None
) -> TopicFrameParts:
    if not is_valid_topic(topic):
        raise ValueError(f"invalid topic {topic!r}")
    message_type = message_type or topic_type(topic)
    if message_type not in allowed_types(topic):
        raise ValueError(f"{message_type!r} is not a message type of topic {topic!r}")
    return TopicFrameParts(
        type_json=encode(message_type),
        topic_json=encode(topic),
        timestamp_json=encode(isoformat(at or timezone.now())),
        data_json=encode(data),
        snapshot=message_type == topic_type(topic),
    )


def join_topic_frame(parts: TopicFrameParts, *, seq: int, epoch: str) -> str:
    """The one serialised form of a topic frame (the Redis store builds the same string in Lua)."""
    return (
        f'{{"type":{parts.type_json},"topic":{parts.topic_json},"seq":{seq},"epoch":{encode(epoch)},'
        f'"timestamp":{parts.timestamp_json},"data":{parts.data_json}}}'
    )


# --- Direct replies ---------------------------------------------------------------------------
def reply(message: protocol.Reply, *, epoch: str) -> str:
    """A direct reply: ``topic`` null and ``seq`` 0, not part of any sequence."""
    return encode(
        {
            "type": message.TYPE,
            "topic": None,
            "seq": 0,
            "epoch": epoch,
            "timestamp": isoformat(timezone.now()),
            "data": message.data(),
        }
    )


def pong(*, epoch: str, echo: Any = None) -> str:
    return reply(protocol.Pong(echo=echo), epoch=epoch)


def error(*, epoch: str, code: str, message: str, request_type: str | None = None) -> str:
    return reply(protocol.Error(code=code, message=message, request_type=request_type), epoch=epoch)


def subscribed(*, epoch: str, topic: str, topics: list[str]) -> str:
    return reply(protocol.Subscribed(topic=topic, topics=topics), epoch=epoch)


def unsubscribed(*, epoch: str, topic: str, topics: list[str]) -> str:
    return reply(protocol.Unsubscribed(topic=topic, topics=topics), epoch=epoch)


def resync(*, epoch: str, topic: str, reason: str, latest_seq: int | None) -> str:
    """History cannot fill the gap: drop state for ``topic``; the next frame on it is a snapshot."""
    return reply(protocol.Resync(topic=topic, reason=reason, latest_seq=latest_seq), epoch=epoch)


def resumed(*, epoch: str, topic: str, since_seq: int, replayed: int) -> str:
    """Sent before the replayed frames of a successful resume."""
    return reply(protocol.Resumed(topic=topic, since_seq=since_seq, replayed=replayed), epoch=epoch)


def status_stale(
    *, epoch: str, reason: str, last_seq: int | None, age_seconds: float | None, stale_after: float
) -> str:
    """The status (and with it every topic) is not being updated: what the client shows is old.

    Repeated while it lasts; the next ``pipeline_status_update`` ends it. ``age_seconds`` is how long
    ago this server received status ``last_seq`` (``None``: none since it started following the topic).
    """
    if reason not in STALE_REASONS:
        raise ValueError(f"unknown stale reason {reason!r}")
    return reply(
        protocol.StatusStale(
            reason=reason,
            last_seq=last_seq,
            age_seconds=None if age_seconds is None else round(age_seconds, 1),
            stale_after=stale_after,
        ),
        epoch=epoch,
    )


# --- Client messages ---------------------------------------------------------------------------
class ClientMessageError(ValueError):
    def __init__(self, code: str, message: str, request_type: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.request_type = request_type


ClientMessage = protocol.ClientRequest


def _topic(content: dict, message_type: str, *, default: str | None) -> str:
    topic = content.get("topic", default)
    if not is_valid_topic(topic):
        raise ClientMessageError(
            UNKNOWN_TOPIC, f"'topic' must be status, alerts or source:<name>; got {topic!r:.80}", message_type
        )
    return topic


def parse_resume_query(*, since_seq: str | None, epoch: str | None) -> tuple[int, str] | None:
    """``?since_seq=N&epoch=E`` on the URL: ``(N, E)``, ``None`` when absent, else :class:`ClientMessageError`.

    Only ASCII digits count: ``str.isdigit`` also accepts characters such as "²" that ``int`` rejects.
    """
    if since_seq is None and epoch is None:
        return None
    digits = since_seq is not None and since_seq.isascii() and since_seq.isdigit() and len(since_seq) <= 16
    if not digits or int(since_seq) > MAX_SEQ:
        raise ClientMessageError(
            INVALID_MESSAGE, f"'since_seq' must be a non-negative integer of at most {MAX_SEQ}.", RESUME
        )
    if epoch is None or not 0 < len(epoch) <= 64:
        raise ClientMessageError(INVALID_MESSAGE, "'epoch' must be the epoch string of a frame.", RESUME)
    return int(since_seq), epoch


def parse_client_message(content: Any) -> ClientMessage:
    """Validate a decoded client frame; raises :class:`ClientMessageError` with a code."""
    if not isinstance(content, dict):
        raise ClientMessageError(INVALID_MESSAGE, "A message must be a JSON object with a 'type'.")
    message_type = content.get("type")
    if not isinstance(message_type, str):
        raise ClientMessageError(INVALID_MESSAGE, "'type' must be a string.")
    if message_type not in CLIENT_TYPES:
        raise ClientMessageError(
            UNKNOWN_TYPE, f"Unknown type {message_type!r:.80}; expected one of {', '.join(CLIENT_TYPES)}."
        )
    if message_type == PING:
        echo = content.get("echo")
        if echo is not None and (not isinstance(echo, (str, int)) or isinstance(echo, bool) or len(str(echo)) > 64):
            raise ClientMessageError(
                INVALID_MESSAGE, "'echo' must be a string or integer of at most 64 characters.", PING
            )
        return protocol.Ping(echo=echo)
    if message_type == SUBSCRIBE:
        return protocol.Subscribe(topic=_topic(content, message_type, default=None))
    if message_type == UNSUBSCRIBE:
        return protocol.Unsubscribe(topic=_topic(content, message_type, default=None))
    if message_type == RESUME:
        since_seq, epoch = content.get("since_seq"), content.get("epoch")
        if isinstance(since_seq, bool) or not isinstance(since_seq, int) or not 0 <= since_seq <= MAX_SEQ:
            raise ClientMessageError(INVALID_MESSAGE, "'since_seq' must be a non-negative integer.", RESUME)
        if not isinstance(epoch, str) or not 0 < len(epoch) <= 64:
            raise ClientMessageError(INVALID_MESSAGE, "'epoch' must be the epoch string of a frame.", RESUME)
        return protocol.Resume(topic=_topic(content, RESUME, default=STATUS_TOPIC), since_seq=since_seq, epoch=epoch)
    return protocol.CLIENT_BY_TYPE[message_type]()
