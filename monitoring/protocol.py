"""Every message of the live feed, one class each: the single typed definition from which come the
builders (``monitoring.events``), the validation of client input (``events.parse_client_message``),
the JSON Schema (``docs/protocol.schema.json``) and the message tables of ``docs/protocol.md``
(``monitoring.protocol_docs`` writes both; a test keeps them current).

A class's fields are its ``data``; their metadata give the JSON Schema of each field. Topic frames
whose ``data`` is a document built elsewhere (the status document, an alert) declare ``DATA_SCHEMA``
instead of fields.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar

STATUS = "status"
ALERTS = "alerts"
SOURCE = "source:<name>"

STALE_REASONS = ("no_update", "database_unavailable", "status_failed")
RESYNC_REASONS = ("epoch_changed", "history_trimmed", "future_seq", "history_unavailable")
ERROR_CODES = (
    "invalid_json",
    "invalid_message",
    "unknown_type",
    "binary_not_supported",
    "frame_too_large",
    "rate_limited",
    "unknown_topic",
    "unavailable",
)
TOPIC_SCHEMA = {"type": "string", "pattern": "^(status|alerts|source:[A-Za-z0-9][A-Za-z0-9_.:-]{0,99})$"}
ECHO_SCHEMA = {"type": ["string", "integer"], "maxLength": 64}
SEQ_SCHEMA = {"type": "integer", "minimum": 0, "maximum": 2**53}


def _field(schema: dict[str, Any], doc: str = "", *, optional: bool = False, default: Any = MISSING) -> Any:
    """A message field: its JSON Schema and, when ``optional``, left out of ``data`` while None."""
    metadata = {"schema": schema, "doc": doc, "optional": optional}
    if optional:
        return field(default=None, metadata=metadata)
    if default is not MISSING:
        return field(default=default, metadata=metadata)
    return field(metadata=metadata)


@dataclass(frozen=True)
class Message:
    TYPE: ClassVar[str]
    DOC: ClassVar[str]  # what it carries and when (a cell of docs/protocol.md)
    DATA_SCHEMA: ClassVar[dict[str, Any] | None] = None  # for data built elsewhere (a document)

    @property
    def type(self) -> str:
        return self.TYPE

    def data(self) -> dict[str, Any]:
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if not (f.metadata.get("optional") and getattr(self, f.name) is None)
        }

    @classmethod
    def data_schema(cls) -> dict[str, Any]:
        if cls.DATA_SCHEMA is not None:
            return cls.DATA_SCHEMA
        declared = fields(cls)
        return {
            "type": "object",
            "properties": {f.name: {**f.metadata["schema"], "description": f.metadata["doc"]} for f in declared},
            "required": [f.name for f in declared if not f.metadata["optional"]],
            "additionalProperties": False,
        }


# --- Server -> client: topic frames (each carries its topic's seq) ------------------------------
@dataclass(frozen=True)
class TopicFrame(Message):
    TOPIC: ClassVar[str]
    SNAPSHOT: ClassVar[bool] = True  # carries the topic's whole state


@dataclass(frozen=True)
class PipelineStatusUpdate(TopicFrame):
    TYPE = "pipeline_status_update"
    TOPIC = STATUS
    DOC = (
        "the status document of `GET /api/v1/monitoring/pipeline-status` ([status.md](status.md)) — published "
        "every `WEBSOCKET_BROADCAST_INTERVAL` (5 s) and early after ingest (≤ `WEBSOCKET_MAX_PUSH_RATE`, 2/s)"
    )
    DATA_SCHEMA = {"type": "object", "description": "The status document (docs/status.md, docs/openapi.yaml)."}


@dataclass(frozen=True)
class AlertsUpdate(TopicFrame):
    TYPE = "alerts_update"
    TOPIC = ALERTS
    DOC = (
        '`{"alerts": [...]}` — the active alerts (the document\'s `alerts`), published when the list changes; '
        "the topic's snapshot. The latest one is kept apart from the history, so a subscriber always starts "
        "from a full list even when the newest frame on the topic is a single change"
    )
    alerts: list = _field({"type": "array", "items": {"type": "object"}}, "the active alerts")


_ALERT_SCHEMA = {"type": "object", "description": "One alert, as GET /api/v1/monitoring/alerts/<id> returns it."}


@dataclass(frozen=True)
class AlertFired(TopicFrame):
    TYPE = "alert_fired"
    TOPIC = ALERTS
    SNAPSHOT = False
    DOC = "one alert (fields as in `GET /alerts`) when it opens; an `alerts_update` follows each batch"
    DATA_SCHEMA = _ALERT_SCHEMA


@dataclass(frozen=True)
class AlertUpdated(AlertFired):
    TYPE = "alert_updated"
    DOC = "one alert when its severity, silencing or inhibition changes; an `alerts_update` follows each batch"


@dataclass(frozen=True)
class AlertAcknowledged(AlertFired):
    TYPE = "alert_acknowledged"
    DOC = "one alert when it is acknowledged; an `alerts_update` follows ([alerts.md](alerts.md))"


@dataclass(frozen=True)
class AlertResolved(AlertFired):
    TYPE = "alert_resolved"
    DOC = "one alert when it resolves; an `alerts_update` follows ([alerts.md](alerts.md))"


@dataclass(frozen=True)
class SourceStatusUpdate(TopicFrame):
    TYPE = "source_status_update"
    TOPIC = SOURCE
    DOC = (
        '`{"source", "status", "scraping": {...} \\| null, "data_quality": {...} \\| null, "window_hours"}` — '
        "that source's rows of the document, published when they change; `status` is the worst of the two, "
        "raised by the source's own firing alerts like the headline ([status.md](status.md))"
    )
    DATA_SCHEMA = {
        "type": "object",
        "properties": {
            "source": {"type": "string"},
            "status": {"type": "string"},
            "scraping": {"type": ["object", "null"]},
            "data_quality": {"type": ["object", "null"]},
            "window_hours": {"type": "integer"},
        },
        "required": ["source", "status", "scraping", "data_quality", "window_hours"],
    }


# --- Server -> client: direct replies (topic null, seq 0) ------------------------------------------
@dataclass(frozen=True)
class Reply(Message):
    AFTER: ClassVar[str]  # what it answers (a cell of docs/protocol.md)


@dataclass(frozen=True)
class Pong(Reply):
    TYPE = "pong"
    DOC = '`{}` or `{"echo": <your echo>}`'
    AFTER = "`ping`"
    echo: str | int | None = _field(ECHO_SCHEMA, "the ping's echo", optional=True)


@dataclass(frozen=True)
class Subscribed(Reply):
    TYPE = "subscribed"
    DOC = '`{"topic", "topics": [all current topics]}`'
    AFTER = (
        "`subscribe` (then that topic's snapshot, if any: its latest full-state frame, followed on `alerts` by "
        "the `alert_*` changes published after it)"
    )
    topic: str = _field(TOPIC_SCHEMA, "the topic joined")
    topics: list = _field({"type": "array", "items": TOPIC_SCHEMA}, "every topic of the connection")


@dataclass(frozen=True)
class Unsubscribed(Reply):
    TYPE = "unsubscribed"
    DOC = '`{"topic", "topics"}`'
    AFTER = "`unsubscribe`"
    topic: str = _field(TOPIC_SCHEMA, "the topic left")
    topics: list = _field({"type": "array", "items": TOPIC_SCHEMA}, "every topic of the connection")


@dataclass(frozen=True)
class Resumed(Reply):
    TYPE = "resumed"
    DOC = '`{"topic", "since_seq", "replayed": n}`'
    AFTER = "a successful resume; the `n` missed frames follow, as the original frames, in order"
    topic: str = _field(TOPIC_SCHEMA, "the topic resumed")
    since_seq: int = _field(SEQ_SCHEMA, "the client's last seq")
    replayed: int = _field({"type": "integer", "minimum": 0}, "frames that follow")


@dataclass(frozen=True)
class Resync(Reply):
    TYPE = "resync"
    DOC = '`{"topic", "reason", "latest_seq"}`'
    AFTER = (
        "history cannot fill a gap: drop state for `topic`; the next frame on it is a fresh snapshot. `reason`: "
        "`epoch_changed`, `history_trimmed`, `future_seq`, `history_unavailable` (Redis unreachable)"
    )
    topic: str = _field(TOPIC_SCHEMA, "the topic to start over")
    reason: str = _field({"type": "string", "enum": list(RESYNC_REASONS)}, "why history cannot fill the gap")
    latest_seq: int | None = _field({**SEQ_SCHEMA, "type": ["integer", "null"]}, "the topic's newest seq")


@dataclass(frozen=True)
class Error(Reply):
    TYPE = "error"
    DOC = '`{"code", "message", "request_type"?}`'
    AFTER = "a refused client frame; the connection stays up"
    code: str = _field({"type": "string", "enum": list(ERROR_CODES)}, "what was wrong (Error codes)")
    message: str = _field({"type": "string"}, "a sentence for people")
    request_type: str | None = _field({"type": "string"}, "the refused message's type", optional=True)


@dataclass(frozen=True)
class StatusStale(Reply):
    TYPE = "status_stale"
    DOC = '`{"topic": "status", "reason", "last_seq", "age_seconds", "stale_after"}`'
    AFTER = (
        "the status is not being updated (below); sent right after the status snapshot (at connect, "
        "`get_status`, a resume) while it lasts, and every `WEBSOCKET_BROADCAST_INTERVAL`"
    )
    reason: str = _field({"type": "string", "enum": list(STALE_REASONS)}, "why it is stale")
    last_seq: int | None = _field({**SEQ_SCHEMA, "type": ["integer", "null"]}, "the last status seq received")
    age_seconds: float | None = _field({"type": ["number", "null"]}, "how long ago it was received")
    stale_after: float = _field({"type": "number"}, "WEBSOCKET_STALE_AFTER")
    topic: str = _field({"const": STATUS}, "always status", default=STATUS)


# --- Client -> server --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClientRequest(Message):
    EXAMPLE: ClassVar[str]  # the message as a client writes it (docs/protocol.md)


@dataclass(frozen=True)
class Ping(ClientRequest):
    TYPE = "ping"
    EXAMPLE = '{"type": "ping", "echo": "abc"}'
    DOC = "`pong` (`echo` optional: string or integer, ≤ 64 characters)"
    echo: str | int | None = _field(ECHO_SCHEMA, "returned in the pong", optional=True)


@dataclass(frozen=True)
class Subscribe(ClientRequest):
    TYPE = "subscribe"
    EXAMPLE = '{"type": "subscribe", "topic": "source:acled"}'
    DOC = "join a topic (`status`, `alerts`, `source:<name>`; at most `WEBSOCKET_MAX_TOPICS`)"
    topic: str = _field(TOPIC_SCHEMA, "the topic to join")


@dataclass(frozen=True)
class Unsubscribe(ClientRequest):
    TYPE = "unsubscribe"
    EXAMPLE = '{"type": "unsubscribe", "topic": "alerts"}'
    DOC = "leave a topic"
    topic: str = _field(TOPIC_SCHEMA, "the topic to leave")


@dataclass(frozen=True)
class GetStatus(ClientRequest):
    TYPE = "get_status"
    EXAMPLE = '{"type": "get_status"}'
    DOC = "the latest `pipeline_status_update` frame"


@dataclass(frozen=True)
class GetAlerts(ClientRequest):
    TYPE = "get_alerts"
    EXAMPLE = '{"type": "get_alerts"}'
    DOC = "the latest `alerts_update` frame (never a single `alert_*` change)"


@dataclass(frozen=True)
class Resume(ClientRequest):
    TYPE = "resume"
    EXAMPLE = '{"type": "resume", "topic": "status", "since_seq": 41, "epoch": "9f1c…"}'
    DOC = (
        "replay what came after `since_seq` (`resumed` + frames) or `resync` + snapshot; `topic` defaults to "
        "`status` and must be subscribed"
    )
    since_seq: int = _field(SEQ_SCHEMA, "the last seq the client has")
    epoch: str = _field({"type": "string", "minLength": 1, "maxLength": 64}, "the epoch of that frame")
    topic: str = _field(TOPIC_SCHEMA, "the topic to resume (default status)", default=STATUS)


TOPIC_FRAMES: tuple[type[TopicFrame], ...] = (
    PipelineStatusUpdate,
    AlertsUpdate,
    AlertFired,
    AlertUpdated,
    AlertAcknowledged,
    AlertResolved,
    SourceStatusUpdate,
)
REPLIES: tuple[type[Reply], ...] = (Pong, Subscribed, Unsubscribed, Resumed, Resync, Error, StatusStale)
CLIENT_REQUESTS: tuple[type[ClientRequest], ...] = (Ping, Subscribe, Unsubscribe, GetStatus, GetAlerts, Resume)
CLIENT_BY_TYPE = {cls.TYPE: cls for cls in CLIENT_REQUESTS}


def envelope_schema(cls: type[Message], *, topic: dict[str, Any], seq: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "description": f"{cls.TYPE}: {cls.DOC}",
        "properties": {
            "type": {"const": cls.TYPE},
            "topic": topic,
            "seq": seq,
            "epoch": {"type": "string"},
            "timestamp": {"type": "string", "format": "date-time"},
            "data": cls.data_schema(),
        },
        "required": ["type", "topic", "seq", "epoch", "timestamp", "data"],
        "additionalProperties": False,
    }


def json_schema() -> dict[str, Any]:
    """The JSON Schema of every message both ways (``docs/protocol.schema.json``)."""
    defs: dict[str, Any] = {}
    for cls in TOPIC_FRAMES:
        topic = {"const": cls.TOPIC} if cls.TOPIC != SOURCE else {"type": "string", "pattern": "^source:"}
        defs[cls.__name__] = envelope_schema(cls, topic=topic, seq={"type": "integer", "minimum": 1})
    for cls in REPLIES:
        defs[cls.__name__] = envelope_schema(cls, topic={"type": "null"}, seq={"const": 0})
    for cls in CLIENT_REQUESTS:
        data = cls.data_schema()
        defs[cls.__name__] = {
            "type": "object",
            "description": f"{cls.TYPE}: {cls.DOC}",
            "properties": {"type": {"const": cls.TYPE}, **data["properties"]},
            "required": ["type", *data["required"]],
        }
    ref = lambda classes: [{"$ref": f"#/$defs/{cls.__name__}"} for cls in classes]  # noqa: E731
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://conflict-monitor.example/protocol.schema.json",
        "title": "Conflict Monitor live feed",
        "$defs": defs,
        "oneOf": [
            {"title": "server to client", "oneOf": ref(TOPIC_FRAMES + REPLIES)},
            {"title": "client to server", "oneOf": ref(CLIENT_REQUESTS)},
        ],
    }
