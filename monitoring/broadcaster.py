"""The periodic worker that feeds the live feed.

It computes the status once per tick (never once per client) and publishes it. Ingest commits send
it a hint, and so does PostgreSQL for any committed write of metrics or runs (``LISTEN``,
monitoring/feed/db_changes.py); it pushes early, at most ``WEBSOCKET_MAX_PUSH_RATE`` times per second, so a burst of
ingests coalesces into a few pushes, the last one reflecting all of them. With Redis, several
broadcasters may run: a lease elects one active; a standby takes over within two intervals.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
import uuid

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import InterfaceError, OperationalError

from monitoring import events, lua, telemetry
from monitoring.feed.db_changes import listen_for_changes, listen_supported
from monitoring.feed.frames import is_status_dirty
from monitoring.feed.registry import redis_client
from monitoring.selectors import anomalies, pipeline_status
from monitoring.services.alerts import evaluate_alerts
from monitoring.services.feed import (
    BROADCASTER_CHANNEL,
    mark_in_process_broadcaster,
    publish_alert_changes,
    publish_status,
    publish_status_unavailable,
)
from monitoring.services.notification_sender import deliver_due

logger = logging.getLogger(__name__)
NOTIFY_EVERY = 1.0

_RENEW = lua.script("lease_renew")
_RELEASE = lua.script("lease_release")


class AlwaysLeader:
    """The embedded default has one process: it is always the active broadcaster."""

    async def hold(self) -> bool:
        return True

    async def release(self) -> None:
        return None


class RedisLease:
    """``SET NX PX`` lease: the holder renews it each loop; it lapses 1.5 intervals after a crash."""

    def __init__(self, *, client, key: str, ttl_ms: int, owner: str) -> None:
        self.client = client
        self.key = key
        self.ttl_ms = ttl_ms
        self.owner = owner
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    async def hold(self) -> bool:
        if await self._renew(keys=[self.key], args=[self.owner, self.ttl_ms]):
            return True
        return bool(await self.client.set(self.key, self.owner, nx=True, px=self.ttl_ms))

    async def release(self) -> None:
        await self._release(keys=[self.key], args=[self.owner])


class Broadcaster:
    def __init__(self, *, lease, interval: float, max_push_rate: float) -> None:
        self.lease = lease
        self.interval = interval
        self.min_gap = 1.0 / max_push_rate
        self.active = False
        self.ticks = 0
        self._dirty = asyncio.Event()
        self._published: dict[str, str] = {}

    async def publish_once(self) -> None:
        with telemetry.BROADCAST_SECONDS.time():
            try:
                await self._publish()
            except Exception:
                telemetry.BROADCASTER_TICKS.labels(outcome="failed").inc()
                raise
        telemetry.BROADCASTER_TICKS.labels(outcome="published").inc()

    async def _publish(self) -> None:
        # The status goes out first: the rules take longer than the status itself (about 20 ms against
        # 5), and an ingest should reach the screen without waiting for them. Its alert list is the
        # one the last evaluation left; when this one changes it, the changes and a new status follow.
        try:
            document = await database_sync_to_async(pipeline_status)()
        except Exception as exc:
            # Silence would only show after WEBSOCKET_STALE_AFTER; the servers can say why at once.
            database = isinstance(exc, (OperationalError, InterfaceError))
            reason = events.STALE_DATABASE_UNAVAILABLE if database else events.STALE_STATUS_FAILED
            await publish_status_unavailable(reason=reason)
            raise
        await self._publish_status(document)
        try:
            changes = await database_sync_to_async(evaluate_alerts)(document=document)
        except Exception:
            # The status is the feed's heartbeat: a failing rule evaluation must not freeze it.
            telemetry.ALERT_EVALUATIONS.labels(outcome="failed").inc()
            logger.exception("alert evaluation failed; the status went out without it")
            changes = []
        else:
            telemetry.ALERT_EVALUATIONS.labels(outcome="ok").inc()
        if changes:
            await publish_alert_changes(changes=changes, with_list=False)
            document = await database_sync_to_async(pipeline_status)()  # its alert list changed
            await self._publish_status(document)
        self.ticks += 1

    async def _publish_status(self, document: dict) -> None:
        self._published = await publish_status(document=document, previous=self._published)
        telemetry.BROADCASTER_PUBLISHES.inc()
        telemetry.BROADCASTER_LAST_PUBLISH.set_to_current_time()

    async def _renew_lease_while_publishing(self) -> None:
        """A slow tick (a busy database) must not let the lease lapse: a standby would take over from
        a live broadcaster, and both would publish."""
        while True:
            await asyncio.sleep(self.interval / 2)
            try:
                if not await self.lease.hold():
                    logger.warning("broadcaster lease lost during a slow publish")
                    return
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("broadcaster lease renewal failed during a publish", exc_info=True)

    async def _notify(self) -> None:
        """Webhook deliveries, in their own thread so a slow endpoint never delays a tick."""
        deliver = database_sync_to_async(deliver_due, thread_sensitive=False)
        while True:
            if self.active:
                try:
                    outcome = await deliver()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("webhook delivery round failed")
                else:
                    telemetry.NOTIFICATION_NOTICES.inc(outcome.pop("notices"))
                    for kind, count in outcome.items():
                        telemetry.WEBHOOK_DELIVERIES.labels(outcome=kind).inc(count)
            await asyncio.sleep(NOTIFY_EVERY)

    async def _listen(self) -> None:
        layer = get_channel_layer()
        while True:
            try:
                message = await layer.receive(BROADCASTER_CHANNEL)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("broadcaster hint channel failed; retrying in 1 s", exc_info=True)
                await asyncio.sleep(1)
                continue
            if is_status_dirty(message):
                self._dirty.set()

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        mark_in_process_broadcaster(True)
        listener = asyncio.ensure_future(self._listen())
        notifier = asyncio.ensure_future(self._notify())
        # Writes by other programs (SQL, COPY, the admin) hint through the database itself.
        database_hints = (
            asyncio.ensure_future(listen_for_changes(on_change=self._dirty.set)) if listen_supported() else None
        )
        last_publish = -float("inf")
        try:
            while not stop.is_set():
                try:
                    holding = await self.lease.hold()
                except Exception:
                    logger.warning("broadcaster lease check failed", exc_info=True)
                    holding = False
                if holding != self.active:
                    logger.info("broadcaster %s", "active" if holding else "standby")
                    self.active = holding
                    telemetry.BROADCASTER_ACTIVE.set(1 if holding else 0)
                if self.active:
                    now = loop.time()
                    due = last_publish + self.interval
                    if self._dirty.is_set():
                        due = min(due, max(last_publish + self.min_gap, now))
                    if now >= due:
                        self._dirty.clear()
                        last_publish = now
                        renewing = asyncio.ensure_future(self._renew_lease_while_publishing())
                        try:
                            await self.publish_once()
                        except Exception:
                            logger.exception("broadcast failed; next attempt at the next tick")
                        finally:
                            renewing.cancel()
                        continue
                    wait = min(due - now, self.interval / 2)
                else:
                    self._dirty.clear()  # the active broadcaster acts on hints; a standby drops them
                    wait = self.interval / 2
                # Wake early for a new hint, for the next tick, or to renew the lease / retry it. A hint
                # already pending waits out the push-rate gap instead of spinning.
                await _wait_any(None if self._dirty.is_set() else self._dirty, stop, timeout=wait)
        finally:
            telemetry.BROADCASTER_ACTIVE.set(0)
            mark_in_process_broadcaster(False)
            listener.cancel()
            notifier.cancel()
            if database_hints is not None:
                database_hints.cancel()
            try:
                await self.lease.release()
            except Exception:
                logger.warning("could not release the broadcaster lease", exc_info=True)


async def _wait_any(dirty: asyncio.Event | None, stop: asyncio.Event, *, timeout: float) -> None:
    waiters = [asyncio.ensure_future(event.wait()) for event in (dirty, stop) if event is not None]
    try:
        await asyncio.wait(waiters, timeout=max(timeout, 0), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def build_broadcaster() -> Broadcaster:
    # The process that publishes the status judges the anomalies it shows (in a thread of its own).
    anomalies.judge_in_this_process(anomalies.THREAD)
    if settings.REDIS_URL:
        interval = settings.WEBSOCKET_BROADCAST_INTERVAL
        lease = RedisLease(
            client=redis_client(),
            key=f"{settings.CHANNEL_LAYER_PREFIX}:broadcaster:lease",
            ttl_ms=int(interval * 1500),
            owner=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
        )
    else:
        lease = AlwaysLeader()
    return Broadcaster(
        lease=lease, interval=settings.WEBSOCKET_BROADCAST_INTERVAL, max_push_rate=settings.WEBSOCKET_MAX_PUSH_RATE
    )


_embedded: asyncio.Task | None = None
_embedded_stop: asyncio.Event | None = None


def ensure_embedded_broadcaster() -> None:
    """Start the in-process broadcaster in the running loop, once (embedded default)."""
    global _embedded, _embedded_stop
    if _embedded is not None and not _embedded.done():
        return
    _embedded_stop = asyncio.Event()
    _embedded = asyncio.ensure_future(build_broadcaster().run(_embedded_stop))


async def stop_embedded_broadcaster(timeout: float = 5.0) -> None:
    """Stop the in-process broadcaster (if it runs) and wait for it, at most ``timeout`` seconds."""
    if _embedded is None or _embedded.done() or _embedded_stop is None:
        return
    _embedded_stop.set()
    try:
        await asyncio.wait_for(asyncio.shield(_embedded), timeout)
    except TimeoutError:
        _embedded.cancel()
    except Exception:
        logger.warning("the embedded broadcaster failed while stopping", exc_info=True)


def start_embedded_broadcaster_with_server() -> None:
    """Have the server start the embedded broadcaster itself, not the first WebSocket: alert evaluation
    and webhook delivery must not wait for someone to open the dashboard.

    Called when the ASGI application is imported. daphne (4.2.3, both ``conflict_monitor.serve`` and
    ``manage.py runserver``) does not speak the ASGI ``lifespan`` protocol, but it installs its Twisted
    asyncio reactor before it imports the application: the broadcaster starts from the reactor's first
    loop callback. Servers that do speak ``lifespan`` start it from ``lifespan_app``; anything else
    still starts it on the first WebSocket (``ensure_embedded_broadcaster`` is idempotent). With
    ``WEBSOCKET_EMBEDDED_BROADCASTER`` off (the default with ``REDIS_URL``) servers never evaluate:
    the ``run_broadcaster`` processes do, one at a time under their Redis lease.
    """
    if not settings.WEBSOCKET_EMBEDDED_BROADCASTER:
        return
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is None or not hasattr(reactor, "_asyncioEventloop"):
        return  # not under daphne's asyncio reactor
    # Startup triggers fire before the asyncio loop runs; callLater(0) runs inside it.
    reactor.callWhenRunning(reactor.callLater, 0, _start_from_reactor)


def _start_from_reactor() -> None:
    try:
        ensure_embedded_broadcaster()
    except Exception:
        logger.exception("could not start the embedded broadcaster; it starts with the first WebSocket")
    else:
        logger.info("embedded broadcaster started with the server (alert evaluation and webhooks included)")


async def lifespan_app(scope, receive, send) -> None:
    """ASGI ``lifespan``, for servers that speak it: start the embedded broadcaster with the server."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if settings.WEBSOCKET_EMBEDDED_BROADCASTER:
                ensure_embedded_broadcaster()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await stop_embedded_broadcaster()
            await send({"type": "lifespan.shutdown.complete"})
            return
