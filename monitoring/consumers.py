"""The live feed's WebSocket endpoint. It translates: parse a client frame, call the feed service,
forward frames. Message shapes come from ``monitoring.events`` only."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections import deque
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from monitoring import events, logs, telemetry
from monitoring.broadcaster import ensure_embedded_broadcaster
from monitoring.feed.connections import ACCEPTED
from monitoring.feed.fanout import get_fanout
from monitoring.feed.frames import Frame
from monitoring.feed.ratelimit import StrikeCounter, TokenBucket
from monitoring.feed.registry import get_connection_registry, get_store
from monitoring.feed.session import session_user_id
from monitoring.services.feed import ensure_status_frame, latest_frame, snapshot_frames
from monitoring.services.tickets import redeem_ticket

logger = logging.getLogger(__name__)
# One record when a socket is served and one when it ends, as monitoring.http_metrics has per request.
access_log = logging.getLogger("monitoring.access")
REFUSAL_REASONS = {
    events.CLOSE_UNAUTHENTICATED: "unauthenticated",
    events.CLOSE_FORBIDDEN: "forbidden",
    events.CLOSE_RECONNECT: "unavailable",
}


@dataclass
class _TopicState:
    epoch: str | None = None
    seq: int = 0


class PipelineStatusConsumer(AsyncJsonWebsocketConsumer):
    # Frames arrive through the process's fan-out (monitoring.feed.fanout), not through a channel of
    # the socket's own: no per-socket Redis subscription, queue or dispatch wake-up per frame.
    channel_layer_alias = None

    topics: dict[str, _TopicState]
    slot_ip: str | None = None
    counted = False  # this socket is in the open-connections gauge
    expiry: asyncio.TimerHandle | None = None
    # Frames (and stale notices, as text) offered while a client request or a gap fill is under way;
    # ``None`` when nothing is.
    backlog: deque[Frame | str] | None = None
    drainer: asyncio.Future | None = None
    # Nothing more is sent: a send failed (the client's close has begun) or the socket was released.
    closing = False

    close_code: int | None = None  # the code of the client's disconnect, once it came

    # --- lifecycle ----------------------------------------------------------------------------
    async def __call__(self, scope, receive, send) -> None:
        # The socket's id: on every record logged while this socket's own task runs (monitoring.logs).
        socket_id = logs.request_id_from(scope.get("headers", ()))
        id_token = logs.request_id.set(socket_id)
        started = time.monotonic()
        try:
            await super().__call__(scope, receive, send)
        finally:
            # Also when a handler raised or the server cancelled the socket: nothing it held may leak
            # (its fan-out membership, its connection slot, the open-sockets gauge).
            try:
                await self._release()
            finally:
                duration_ms = round((time.monotonic() - started) * 1000, 3)
                access_log.info(
                    "websocket close %s code %s after %.0f ms",
                    scope.get("path", ""),
                    self.close_code,
                    duration_ms,
                    extra={
                        "request_id": socket_id,
                        "event": "websocket_close",
                        "path": scope.get("path", ""),
                        "code": self.close_code,
                        "duration_ms": duration_ms,
                        "client": (scope.get("client") or (None,))[0],
                    },
                )
                logs.request_id.reset(id_token)

    async def connect(self) -> None:
        self.topics = {}
        self.fanout = get_fanout()
        self.serial = asyncio.Lock()
        self.bucket = TokenBucket(rate=settings.WEBSOCKET_RATE_PER_SECOND, burst=settings.WEBSOCKET_RATE_BURST)
        self.strikes = StrikeCounter(limit=settings.WEBSOCKET_MAX_STRIKES)
        self.last_rate_error = 0.0
        if settings.WEBSOCKET_EMBEDDED_BROADCASTER:
            ensure_embedded_broadcaster()
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        refusal = await self._auth_refusal(query)
        if refusal is not None:
            telemetry.WS_REFUSED.labels(reason=REFUSAL_REASONS.get(refusal, str(refusal))).inc()
            await self.accept()
            await self.close(code=refusal)
            return
        ip = (self.scope.get("client") or ("unknown",))[0]
        try:
            verdict = await get_connection_registry().acquire(ip=ip)
        except Exception:
            # Caps need Redis; while it is away the feed degrades to uncapped rather than refusing everyone.
            logger.warning("connection cap unavailable; accepting without a slot", exc_info=True)
            verdict = None
        if verdict not in (ACCEPTED, None):
            telemetry.WS_REFUSED.labels(reason=verdict).inc()
            await self.accept()
            await self.close(code=events.CLOSE_TOO_MANY_CONNECTIONS)
            return
        self.slot_ip = ip if verdict == ACCEPTED else None
        await self.accept()
        self.counted = True
        telemetry.WS_CONNECTIONS.inc()
        access_log.info(
            "websocket open %s",
            self.scope.get("path", ""),
            extra={
                "request_id": logs.request_id.get(),
                "event": "websocket_open",
                "path": self.scope.get("path", ""),
                "client": (self.scope.get("client") or (None,))[0],
            },
        )
        # Jitter spreads the reconnects of clients that connected together.
        age = settings.WEBSOCKET_MAX_CONNECTION_AGE * (1 - secrets.randbelow(1000) / 10_000)
        self.expiry = asyncio.get_running_loop().call_later(age, self._close_when_old)
        try:
            resume = events.parse_resume_query(
                since_seq=(query.get("since_seq") or [None])[0], epoch=(query.get("epoch") or [None])[0]
            )
        except events.ClientMessageError as exc:
            # A bad resume on the URL is answered like a bad resume message; the snapshot follows.
            await self._send(events.error(epoch="", code=exc.code, message=str(exc), request_type=exc.request_type))
            resume = None
        try:
            async with self._in_order():
                await self._subscribe(events.STATUS_TOPIC, resume=resume, reply=False)
        except Exception:
            logger.warning("live feed unavailable at connect; asking the client to reconnect", exc_info=True)
            await self.close(code=events.CLOSE_RECONNECT)

    async def disconnect(self, code: int) -> None:
        self.close_code = code
        await self._release()

    async def _release(self) -> None:
        """Give back everything the socket holds. Runs twice (disconnect, then the end of the
        socket); all state is detached before the first await, so a cancellation leaks nothing."""
        self.closing = True
        if self.counted:
            telemetry.WS_CONNECTIONS.dec()
            self.counted = False
        if self.expiry is not None:
            self.expiry.cancel()
            self.expiry = None
        if self.drainer is not None:
            self.drainer.cancel()
            self.drainer = None
        topics, self.topics = getattr(self, "topics", {}), {}
        slot_ip, self.slot_ip = self.slot_ip, None
        if topics:
            await self.fanout.leave(self, *topics)
        if slot_ip is not None:
            try:
                await get_connection_registry().release(ip=slot_ip)
            except Exception:
                logger.warning("could not release a connection slot", exc_info=True)

    async def _auth_refusal(self, query: dict[str, list[str]]) -> int | None:
        if settings.MONITORING_PUBLIC_READ:
            return None
        try:
            if await session_user_id(self.scope) is not None:
                return None
        except Exception:
            # The session store (the database) is unreachable: the session may still be good.
            logger.warning("session store unavailable; asking the client to reconnect", exc_info=True)
            return events.CLOSE_RECONNECT
        ticket = (query.get("ticket") or [""])[0]
        if not ticket:
            return events.CLOSE_UNAUTHENTICATED
        try:
            user_id = await sync_to_async(redeem_ticket)(ticket=ticket)
        except Exception:
            # The ticket store (the cache, Redis in production) is unreachable: the ticket may still be
            # good, so the client is asked to reconnect rather than told it is refused.
            logger.warning("ticket store unavailable; asking the client to reconnect", exc_info=True)
            return events.CLOSE_RECONNECT
        if user_id is None:
            return events.CLOSE_FORBIDDEN
        return None

    def _close_when_old(self) -> None:
        self.expiry = None
        asyncio.ensure_future(self.close(code=events.CLOSE_RECONNECT))

    # --- server -> client ---------------------------------------------------------------------
    async def offer(self, frame: Frame) -> None:
        """The fan-out's hand-off of each frame of a joined topic, in publish order.

        The next frame in sequence goes straight to the socket. Anything else (a gap, a new epoch, or
        a client request under way) waits in the backlog for ``_deliver``, in this socket's own task,
        so one socket's history lookup never holds up the frame for every other socket.
        """
        state = self.topics.get(frame.topic)
        if state is None or self.closing:
            return
        if self.backlog is None:
            if state.epoch == frame.epoch and frame.seq == state.seq + 1:
                await self._send_frame(state, frame)
                return
            self.backlog = deque(maxlen=settings.WEBSOCKET_HISTORY_LENGTH)
            self.drainer = asyncio.ensure_future(self._drain())
        # Beyond the bound the oldest frames go: the gap they leave is filled from history or resynced.
        self.backlog.append(frame)

    async def notice(self, text: str) -> None:
        """The fan-out's ``status_stale`` notice; after any frame already waiting, so order holds."""
        if self.closing or events.STATUS_TOPIC not in self.topics:
            return
        if self.backlog is not None:
            self.backlog.append(text)
            return
        await self._send(text)

    async def _drain(self) -> None:
        try:
            async with self._in_order():
                pass
        except Exception:
            logger.exception("delivering the backlog failed; the next frame fills the gap")

    @asynccontextmanager
    async def _in_order(self):
        """Run a client request (or a backlog drain) alone; frames offered meanwhile follow it in order."""
        async with self.serial:
            if self.backlog is None:
                self.backlog = deque(maxlen=settings.WEBSOCKET_HISTORY_LENGTH)
            try:
                yield
            finally:
                try:
                    while self.backlog:
                        frame = self.backlog.popleft()
                        if isinstance(frame, str):
                            await self._send(frame)
                            continue
                        state = self.topics.get(frame.topic)
                        if state is not None:
                            await self._deliver(frame.topic, state, frame)
                finally:
                    self.backlog = None

    async def _deliver(self, topic: str, state: _TopicState, frame: Frame) -> None:
        """Forward frames in seq order; fill gaps from history, or resync when history cannot."""
        if state.epoch != frame.epoch:
            if state.epoch is not None:
                await self._send(
                    events.resync(epoch=frame.epoch, topic=topic, reason="epoch_changed", latest_seq=frame.seq)
                )
            await self._restart(topic, state, frame)
            return
        if frame.seq <= state.seq:
            return  # already delivered (a gap fill or snapshot got there first)
        if frame.seq > state.seq + 1:
            try:
                missed = await get_store().since(
                    topic=topic, epoch=state.epoch, since_seq=state.seq, limit=settings.WEBSOCKET_HISTORY_LENGTH
                )
            except Exception:
                logger.warning("history unavailable for a gap on %s; resyncing the client", topic, exc_info=True)
                missed = "history_unavailable"
            if isinstance(missed, list) and missed and missed[0].seq == state.seq + 1:
                for old in missed:
                    await self._send_frame(state, old)
                if state.seq < frame.seq:
                    await self._send_frame(state, frame)
                return
            reason = missed if isinstance(missed, str) else "history_trimmed"
            await self._send(events.resync(epoch=frame.epoch, topic=topic, reason=reason, latest_seq=frame.seq))
            await self._restart(topic, state, frame)
            return
        await self._send_frame(state, frame)

    async def _restart(self, topic: str, state: _TopicState, frame: Frame) -> None:
        """Start ``topic`` over at ``frame``. A frame that is not a full state (an alert change) is
        preceded by the topic's snapshot and what followed it, so the client never builds on a part."""
        if events.frames_are_snapshots(topic):
            await self._send_frame(state, frame)
            return
        state.epoch, state.seq = None, 0
        try:
            await self._snapshot(topic, state)
        except Exception:
            logger.warning("no snapshot of %s for a restart; forwarding the frame alone", topic, exc_info=True)
        # No snapshot yet (a new epoch that began with a change): the frame starts the topic's history.
        if state.epoch is None or (state.epoch == frame.epoch and state.seq == frame.seq - 1):
            await self._send_frame(state, frame)

    async def _send_frame(self, state: _TopicState, frame: Frame) -> None:
        state.epoch, state.seq = frame.epoch, frame.seq
        telemetry.WS_FRAMES_SENT.inc()
        await self._send(frame.text)

    async def _send(self, text: str) -> None:
        """Every frame to the client goes through here (ASGI send, no wrapper in between)."""
        if self.closing:
            return
        try:
            await self.base_send({"type": "websocket.send", "text": text})
        except Exception:
            # The server refuses frames once the client's close has begun (daphne: "Attempt to send on
            # a closed protocol"); the socket's disconnect follows, and nothing more is for it.
            self.closing = True
            logger.debug("a frame could not be sent; the socket is closing", exc_info=True)

    def _epoch(self) -> str:
        state = self.topics.get(events.STATUS_TOPIC)
        return (state.epoch or "") if state else ""

    # --- client -> server ---------------------------------------------------------------------
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs) -> None:
        limit = settings.WEBSOCKET_MAX_FRAME_BYTES
        if text_data is None:
            await self._refuse(events.BINARY_NOT_SUPPORTED, "Send JSON text frames; binary frames are not accepted.")
            return
        if len(text_data) > limit or len(text_data.encode("utf-8", "surrogatepass")) > limit:
            await self._refuse(events.FRAME_TOO_LARGE, f"Frames are limited to {limit} bytes.")
            return
        if not self.bucket.take():
            await self._refuse(events.RATE_LIMITED, "Too many messages; slow down.", throttle=True)
            return
        try:
            content = json.loads(text_data)
        except (ValueError, RecursionError):
            await self._refuse(events.INVALID_JSON, "The frame is not valid JSON.")
            return
        try:
            message = events.parse_client_message(content)
        except events.ClientMessageError as exc:
            await self._refuse(exc.code, str(exc), request_type=exc.request_type)
            return
        try:
            async with self._in_order():
                await self._handle(message)
        except Exception:
            logger.exception("live feed request %s failed", message.type)
            await self._send(
                events.error(
                    epoch=self._epoch(),
                    code=events.UNAVAILABLE,
                    message="The feed could not answer right now; retry shortly.",
                    request_type=message.type,
                )
            )

    async def _refuse(
        self, code: str, message: str, *, request_type: str | None = None, throttle: bool = False
    ) -> None:
        telemetry.WS_REFUSED_FRAMES.labels(code=code).inc()
        if self.strikes.add():
            if not self.closing:  # frames already in flight after the close must not count it again
                self.closing = True
                telemetry.WS_POLICY_CLOSES.inc()
                await self.close(code=events.CLOSE_POLICY_VIOLATION)
            return
        if throttle:
            # One rate-limit error per second is enough; answering every flooded frame feeds the flood.
            now = asyncio.get_running_loop().time()
            if now - self.last_rate_error < 1.0:
                return
            self.last_rate_error = now
        await self._send(events.error(epoch=self._epoch(), code=code, message=message, request_type=request_type))

    async def _handle(self, message: events.ClientMessage) -> None:
        if message.type == events.PING:
            await self._send(events.pong(epoch=self._epoch(), echo=message.echo))
        elif message.type == events.SUBSCRIBE:
            await self._subscribe(message.topic, resume=None, reply=True)
        elif message.type == events.UNSUBSCRIBE:
            await self._unsubscribe(message.topic)
        elif message.type == events.GET_STATUS:
            await self._send((await ensure_status_frame()).text)
            await self._send_stale_notice()
        elif message.type == events.GET_ALERTS:
            await self._send_latest(events.ALERTS_TOPIC)
        elif message.type == events.RESUME:
            state = self.topics.get(message.topic)
            if state is None:
                await self._refuse(events.UNKNOWN_TOPIC, f"Not subscribed to {message.topic!r}.", request_type="resume")
                return
            await self._resume(message.topic, state, since_seq=message.since_seq, epoch=message.epoch)

    async def _send_latest(self, topic: str) -> None:
        """The topic's latest full-state frame (``alerts_update``, never a single alert change)."""
        frames = await snapshot_frames(topic=topic)
        if not frames:
            await self._send(
                events.error(epoch=self._epoch(), code=events.UNAVAILABLE, message=f"Nothing published on {topic} yet.")
            )
            return
        await self._send(frames[0].text)

    async def _subscribe(self, topic: str, *, resume: tuple[int, str] | None, reply: bool) -> None:
        if topic not in self.topics:
            if len(self.topics) >= settings.WEBSOCKET_MAX_TOPICS:
                await self._refuse(
                    events.INVALID_MESSAGE, "Too many topics on one connection.", request_type="subscribe"
                )
                return
            await self.fanout.join(topic, self)
            self.topics[topic] = _TopicState()
        if reply:
            await self._send(events.subscribed(epoch=self._epoch(), topic=topic, topics=sorted(self.topics)))
        state = self.topics[topic]
        if resume is not None:
            await self._resume(topic, state, since_seq=resume[0], epoch=resume[1])
        else:
            await self._snapshot(topic, state)
        if topic == events.STATUS_TOPIC:
            await self._send_stale_notice()

    async def _send_stale_notice(self) -> None:
        """After the status a client starts from: whether that status is current (see feed.staleness)."""
        text = self.fanout.status_notice()
        if text is not None:
            await self._send(text)

    async def _snapshot(self, topic: str, state: _TopicState) -> None:
        """The topic's latest full state, then the changes published after it, skipping what was sent."""
        for frame in await snapshot_frames(topic=topic):
            if frame.epoch != state.epoch or frame.seq > state.seq:
                await self._send_frame(state, frame)

    async def _unsubscribe(self, topic: str) -> None:
        if self.topics.pop(topic, None) is not None:
            await self.fanout.leave(self, topic)
        await self._send(events.unsubscribed(epoch=self._epoch(), topic=topic, topics=sorted(self.topics)))

    async def _resume(self, topic: str, state: _TopicState, *, since_seq: int, epoch: str) -> None:
        missed = await get_store().since(
            topic=topic, epoch=epoch, since_seq=since_seq, limit=settings.WEBSOCKET_HISTORY_LENGTH
        )
        if isinstance(missed, str):
            telemetry.WS_RESUMES.labels(outcome="resync").inc()
            latest = await latest_frame(topic=topic)
            await self._send(
                events.resync(
                    epoch=latest.epoch if latest else epoch,
                    topic=topic,
                    reason=missed,
                    latest_seq=latest.seq if latest else None,
                )
            )
            state.epoch, state.seq = None, 0
            await self._snapshot(topic, state)
            return
        telemetry.WS_RESUMES.labels(outcome="replayed").inc()
        await self._send(events.resumed(epoch=epoch, topic=topic, since_seq=since_seq, replayed=len(missed)))
        telemetry.WS_FRAMES_SENT.inc(len(missed))
        for frame in missed:
            await self._send(frame.text)
        last = missed[-1].seq if missed else since_seq
        if state.epoch == epoch:
            state.seq = max(state.seq, last)
        else:
            state.epoch, state.seq = epoch, last
