"""The live feed's WebSocket endpoint. It translates: accept, parse a client frame, call the
delivery engine (``monitoring.feed.delivery``) or the feed service, send what they return. Message
shapes come from ``monitoring.events`` only; ordering, gap fill, resync and resume live in the engine."""

from __future__ import annotations

import asyncio
import logging
import secrets
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from monitoring import events, telemetry
from monitoring.broadcaster import ensure_embedded_broadcaster
from monitoring.feed import access, guard
from monitoring.feed import admission as admission_
from monitoring.feed.delivery import Delivery, Out
from monitoring.feed.fanout import get_fanout
from monitoring.feed.frames import Frame
from monitoring.feed.ordering import InOrder
from monitoring.feed.requests import Requests
from monitoring.services.feed import READER

logger = logging.getLogger(__name__)


class PipelineStatusConsumer(AsyncJsonWebsocketConsumer):
    # Frames arrive through the process's fan-out (monitoring.feed.fanout), not through a channel of
    # the socket's own: no per-socket Redis subscription, queue or dispatch wake-up per frame.
    channel_layer_alias = None

    # The engines exist once the socket is admitted (``_build_engines``); a refused socket has none.
    delivery: Delivery | None = None
    order: InOrder | None = None
    requests: Requests | None = None
    guard: guard.InputGuard | None = None
    slot_ip: str | None = None
    counted = False  # this socket is in the open-connections gauge
    expiry: asyncio.TimerHandle | None = None
    closing = False  # nothing more is sent: a send failed (the client's close began) or it was released
    close_code: int | None = None  # the code of the client's disconnect, once it came

    # --- lifecycle ----------------------------------------------------------------------------
    async def __call__(self, scope, receive, send) -> None:
        async with access.socket_logged(scope, code=lambda: self.close_code):
            try:
                await super().__call__(scope, receive, send)
            finally:
                # Also when a handler raised or the server cancelled the socket: nothing it held may leak.
                await self._release()

    async def connect(self) -> None:
        # The handshake completes before anything that waits. A handshake still open after daphne's
        # --websocket_connect_timeout (5 s) is reset by autobahn or answered 403 by daphne; under a
        # connection flood, admission (a Redis round trip per socket, queued behind all the others)
        # took that long, and refused clients got a reset instead of their 4029 close.
        await self.accept()
        if settings.WEBSOCKET_EMBEDDED_BROADCASTER:
            ensure_embedded_broadcaster()
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        admission = await admission_.admit(self.scope, query)
        if admission.close_code is not None:
            await self.close(code=admission.close_code)
            return
        self.slot_ip = admission.slot_ip
        self.counted = True
        telemetry.WS_CONNECTIONS.inc()
        access.log_open(self.scope)
        self._build_engines()
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
            async with self.order.alone():
                await self.requests.subscribe(events.STATUS_TOPIC, resume=resume, reply=False)
        except Exception:
            logger.warning("live feed unavailable at connect; asking the client to reconnect", exc_info=True)
            await self.close(code=events.CLOSE_RECONNECT)

    def _build_engines(self) -> None:
        """The per-socket engines, for an admitted socket only: a refused one never needs them."""
        self.fanout = get_fanout()
        self.delivery = Delivery(reader=READER, history_limit=settings.WEBSOCKET_HISTORY_LENGTH)
        self.order = InOrder(delivery=self.delivery, send=self._emit, bound=settings.WEBSOCKET_HISTORY_LENGTH)
        self.requests = Requests(
            delivery=self.delivery,
            source=READER,
            fanout=self.fanout,
            member=self,
            send=self._emit,
            refuse=self._refuse,
            max_topics=settings.WEBSOCKET_MAX_TOPICS,
        )
        self.guard = guard.InputGuard.configured(settings)

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
        if self.order is not None:
            self.order.cancel()
        # The engines hold this socket's bound methods: dropping them lets the socket be freed by its
        # reference count, not left to the cyclic collector.
        self.order = self.requests = None
        topics = self.delivery.topics() if self.delivery else []
        if self.delivery is not None:
            self.delivery.cursors = {}
        slot_ip, self.slot_ip = self.slot_ip, None
        if topics:
            await self.fanout.leave(self, *topics)
        await admission_.release(slot_ip)

    def _close_when_old(self) -> None:
        self.expiry = None
        asyncio.ensure_future(self.close(code=events.CLOSE_RECONNECT))

    # --- server -> client ---------------------------------------------------------------------
    async def offer(self, frame: Frame) -> None:
        """The fan-out's hand-off of each frame of a joined topic, in publish order.

        The next frame in sequence with nothing waiting goes straight out (the hot path: one await per
        frame and socket, nothing allocated); anything else goes through the ordering engine."""
        if self.closing:
            return
        if self.order.goes_straight_out(frame):
            telemetry.WS_FRAMES_SENT.inc()
            await self._send(frame.text)
            return
        await self.order.offer(frame)

    async def notice(self, text: str) -> None:
        """The fan-out's ``status_stale`` notice, in order with the frames."""
        if not self.closing and events.STATUS_TOPIC in self.delivery.cursors:
            await self.order.notice(text)

    async def _emit(self, item: Out) -> None:
        if isinstance(item, Frame):
            telemetry.WS_FRAMES_SENT.inc()
            item = item.text
        await self._send(item)

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

    # --- client -> server ---------------------------------------------------------------------
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs) -> None:
        if self.requests is None:
            return  # refused (its close is under way) or released: nothing is answered
        message = self.guard.parse(text_data)
        if isinstance(message, guard.Refusal):
            await self._refuse(message)
            return
        try:
            async with self.order.alone():
                await self.requests.handle(message)
        except Exception:
            logger.exception("live feed request %s failed", message.type)
            await self._error(events.UNAVAILABLE, "The feed could not answer right now; retry shortly.", message.type)

    async def _refuse(self, refusal: guard.Refusal) -> None:
        telemetry.WS_REFUSED_FRAMES.labels(code=refusal.code).inc()
        verdict = self.guard.verdict(refusal)
        if verdict == guard.CLOSE:
            if not self.closing:  # frames already in flight after the close must not count it again
                self.closing = True
                telemetry.WS_POLICY_CLOSES.inc()
                await self.close(code=events.CLOSE_POLICY_VIOLATION)
        elif verdict == guard.SEND:
            await self._error(refusal.code, refusal.message, refusal.request_type)

    async def _error(self, code: str, message: str, request_type: str | None = None) -> None:
        await self._send(
            events.error(epoch=self.delivery.epoch(), code=code, message=message, request_type=request_type)
        )
