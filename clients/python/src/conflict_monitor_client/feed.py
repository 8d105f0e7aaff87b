"""The live feed's frames and the follower's bookkeeping, without any I/O.

The server's messages (docs/protocol.md) as the few small types a follower needs, parsed from the frame
text; ``Cursor`` keeps the position in the status topic (epoch and highest seq) and turns each frame into
what ``follow()`` yields, as the dashboard's feed client does (monitoring/static/monitoring/feed-client.js);
``close_verdict`` says what a close code asks of the client. ``follow.py`` only carries this out over a
socket. Nothing here imports the server: the protocol is read from the wire.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from conflict_monitor_client.errors import (
    AuthenticationFailed,
    ConflictMonitorError,
    FeedClosed,
    PermissionDenied,
)
from conflict_monitor_client.wire import API_PATH

__all__ = [
    "FEED_PATH",
    "Cursor",
    "FeedPosition",
    "Frame",
    "StatusStale",
    "StatusUpdate",
    "close_verdict",
    "feed_url",
    "parse_frame",
]

logger = logging.getLogger("conflict_monitor_client.feed")

FEED_PATH = "/ws/monitoring/pipeline-status"
STATUS_TOPIC = "status"
# Message types (docs/protocol.md; the server defines them in monitoring/protocol.py).
STATUS_UPDATE = "pipeline_status_update"
RESYNC = "resync"
RESUMED = "resumed"
STATUS_STALE = "status_stale"
ERROR = "error"
# Close codes (docs/protocol.md, Close codes).
CLOSE_RECONNECT = 4000
CLOSE_POLICY_VIOLATION = 4008
CLOSE_TOO_MANY_CONNECTIONS = 4029
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
INGEST_KEY_PREFIX = "cm_"


@dataclass(frozen=True)
class FeedPosition:
    """Where a follower is in the status topic: ``follow(since=...)`` starts after it (a program that
    stored ``feed.position`` picks up where it stopped, if the server's history still reaches back)."""

    epoch: str
    seq: int


@dataclass(frozen=True)
class StatusUpdate:
    """One status document (``GET /api/v1/monitoring/pipeline-status``'s body, docs/status.md), in order.

    ``resynced`` is True for the first document of a follow and after the server could not replay what
    was missed (history lost or trimmed, a new epoch): documents between the previous one and this one
    may never have been seen. Otherwise ``seq`` is the previous update's plus one.
    """

    seq: int
    epoch: str
    timestamp: datetime
    status: dict[str, Any]
    resynced: bool

    @property
    def position(self) -> FeedPosition:
        return FeedPosition(self.epoch, self.seq)


@dataclass(frozen=True)
class StatusStale:
    """The server says the status is not being updated (docs/protocol.md, Staleness): the last document is
    old. Repeated while it lasts; the next ``StatusUpdate`` ends it."""

    reason: str
    last_seq: int | None
    age_seconds: float | None
    stale_after: float


@dataclass(frozen=True)
class Frame:
    """A server frame's envelope; ``data`` is the payload."""

    type: str
    topic: str | None
    seq: int
    epoch: str
    timestamp: datetime
    data: dict[str, Any]


def _timestamp(value: Any) -> datetime | None:
    # The server writes ISO-8601 UTC with a trailing Z, which fromisoformat reads from Python 3.11 on.
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def parse_frame(text: str | bytes) -> Frame | None:
    """The frame, or None for text that is not one (logged: the server never sends such)."""
    try:
        raw = json.loads(text)
    except ValueError:
        raw = None
    if (
        isinstance(raw, dict)
        and isinstance(raw.get("type"), str)
        and (raw.get("topic") is None or isinstance(raw.get("topic"), str))
        and isinstance(raw.get("seq"), int)
        and not isinstance(raw.get("seq"), bool)
        and isinstance(raw.get("epoch"), str)
        and isinstance(raw.get("data"), dict)
        and (timestamp := _timestamp(raw.get("timestamp"))) is not None
    ):
        return Frame(raw["type"], raw["topic"], raw["seq"], raw["epoch"], timestamp, raw["data"])
    logger.warning("ignoring a feed frame that is not one: %.200r", text)
    return None


def _optional_number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class Cursor:
    """The follower's position in the status topic, and what each frame means for it.

    The rules are the dashboard client's: a status frame at or below the position in the same epoch is a
    duplicate (dropped); a higher one, or one of another epoch, is the next document. ``resync`` drops the
    position: the next status frame is a fresh snapshot. A ``status_stale`` whose ``last_seq`` is below the
    position (same epoch) is void: a newer status crossed it.
    """

    def __init__(self, since: FeedPosition | None = None) -> None:
        self.position = since
        # The next document starts a new run of documents (resynced); a stored position resumes the old run.
        self._fresh = since is None
        self.stale: StatusStale | None = None

    def query(self) -> dict[str, str]:
        """The URL parameters of the next connect: resume after the position, if there is one."""
        if self.position is None:
            return {}
        return {"since_seq": str(self.position.seq), "epoch": self.position.epoch}

    def receive(self, frame: Frame) -> StatusUpdate | StatusStale | None:
        if frame.type == STATUS_UPDATE and frame.topic == STATUS_TOPIC:
            return self._status(frame)
        if frame.type == RESYNC and frame.data.get("topic") == STATUS_TOPIC:
            logger.info("feed resync (%s): starting from a fresh snapshot", frame.data.get("reason"))
            self.position = None
            self._fresh = True
            return None
        if frame.type == STATUS_STALE:
            return self._stale(frame)
        if frame.type == ERROR:
            # The only requests a follower makes are on the URL; a refused one (a bad stored position) is
            # followed by the normal snapshot.
            logger.warning("the feed refused a request: %s", frame.data.get("message"))
        return None

    def _status(self, frame: Frame) -> StatusUpdate | None:
        last = self.position
        if last is not None and last.epoch == frame.epoch and frame.seq <= last.seq:
            return None
        resynced = self._fresh or last is None or last.epoch != frame.epoch
        self.position = FeedPosition(frame.epoch, frame.seq)
        self._fresh = False
        self.stale = None
        return StatusUpdate(
            seq=frame.seq,
            epoch=frame.epoch,
            timestamp=frame.timestamp,
            status=frame.data,
            resynced=resynced,
        )

    def _stale(self, frame: Frame) -> StatusStale | None:
        last_seq = frame.data.get("last_seq")
        last_seq = last_seq if isinstance(last_seq, int) and not isinstance(last_seq, bool) else None
        last = self.position
        if last is not None and last.epoch == frame.epoch and last_seq is not None and last_seq < last.seq:
            return None
        self.stale = StatusStale(
            reason=str(frame.data.get("reason")),
            last_seq=last_seq,
            age_seconds=_optional_number(frame.data.get("age_seconds")),
            stale_after=_optional_number(frame.data.get("stale_after")) or 0.0,
        )
        return self.stale


def feed_url(api_base: str, query: dict[str, str]) -> str:
    """The socket URL for the API base URL ``http[s]://host[/prefix]/api/v1/monitoring/``: ws[s], same host."""
    parts = urlsplit(api_base)
    prefix = parts.path.removesuffix(API_PATH.lstrip("/")).rstrip("/")
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, prefix + FEED_PATH, urlencode(query), ""))


@dataclass(frozen=True)
class Reconnect:
    """Connect again: at once (``backoff`` False) or after the next back-off delay."""

    backoff: bool


def close_verdict(code: int | None, *, delivered: bool, token: str) -> Reconnect | ConflictMonitorError:
    """What the close ``code`` asks of the client (None: no close frame, the network failed).

    ``delivered``: the connection brought at least one frame. 4000 after frames is a planned recycle
    (connection age, a draining server): back at once; 4000 right after the handshake (the server's Redis is
    away) and everything transient else, after a back-off. 4401/4403/4008 will not change by retrying: the
    error to raise.
    """
    if code == CLOSE_RECONNECT:
        return Reconnect(backoff=not delivered)
    if code == CLOSE_UNAUTHENTICATED:
        return AuthenticationFailed(
            "The feed is private and took no credentials: follow with a read key (cmr_…, manage.py create_read_token).",
            code="not_authenticated",
            close_code=code,
        )
    if code == CLOSE_FORBIDDEN:
        if token.startswith(INGEST_KEY_PREFIX):
            return PermissionDenied(
                "An ingest key cannot open the live feed: follow with a read key (cmr_…, manage.py create_read_token).",
                code="forbidden",
                close_code=code,
            )
        return AuthenticationFailed("The feed refused the key: unknown or revoked.", code="forbidden", close_code=code)
    if code == CLOSE_POLICY_VIOLATION:
        return FeedClosed("The feed closed the connection for a protocol violation.", close_code=code)
    return Reconnect(backoff=True)
