"""Whether the status a server process forwards is current.

The status topic is the feed's heartbeat: the broadcaster publishes it every interval. When no status
frame reached this process for ``WEBSOCKET_STALE_AFTER`` seconds (the broadcaster died or is handing
over, Redis is away), or the broadcaster reports that it cannot compute the status (the database is
away), every local socket that follows the status is told so with a ``status_stale`` frame, again
every interval while it lasts. A client therefore never shows an old verdict as current. The next
status frame ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from monitoring import events, telemetry
from monitoring.feed.frames import Frame

logger = logging.getLogger(__name__)


class StatusWatch:
    def __init__(self, *, stale_after: float, repeat_every: float, notify: Callable[[str], Awaitable[None]]) -> None:
        self.stale_after = stale_after
        self.repeat_every = repeat_every
        self.notify = notify
        self.reason: str | None = None
        self.epoch = ""
        self.last_seq: int | None = None
        self.last_at: float | None = None  # loop time the last status frame arrived
        self.started_at = 0.0
        self._changed = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        """Begin watching (the process joined the status topic). Frames seen before do not count:
        while the process was not a member, none reached it."""
        if self._task is not None:
            return
        self._set_reason(None)
        self.last_seq, self.last_at = None, None
        self.started_at = asyncio.get_running_loop().time()
        self._task = asyncio.ensure_future(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
            self._set_reason(None)

    def fresh(self, frame: Frame) -> None:
        """A status frame arrived: the status is current again."""
        self.epoch, self.last_seq = frame.epoch, frame.seq
        self.last_at = asyncio.get_running_loop().time()
        if self.reason is not None:
            self._set_reason(None)
            self._changed.set()

    def report(self, reason: str) -> None:
        """The broadcaster could not produce a status (``reason``): stale now, not after the timeout."""
        if reason not in events.STALE_REASONS:
            logger.warning("ignoring a stale report with an unknown reason %r", reason)
            return
        if self._task is not None and reason != self.reason:
            self._set_reason(reason)
            self._changed.set()

    def notice(self) -> str | None:
        """The ``status_stale`` frame to send now, or ``None`` while the status is current."""
        if self.reason is None:
            return None
        age = None if self.last_at is None else asyncio.get_running_loop().time() - self.last_at
        return events.status_stale(
            epoch=self.epoch, reason=self.reason, last_seq=self.last_seq, age_seconds=age, stale_after=self.stale_after
        )

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._changed.clear()
            if self.reason is None:
                due = (self.last_at if self.last_at is not None else self.started_at) + self.stale_after
                if loop.time() < due:
                    await self._sleep(due - loop.time())
                    continue
                self._set_reason(events.STALE_NO_UPDATE)
            text = self.notice()
            try:
                await self.notify(text)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("could not tell the status followers that the status is stale")
            await self._sleep(self.repeat_every)

    def _set_reason(self, reason: str | None) -> None:
        if reason is not None and reason != self.reason:
            telemetry.FEED_STALE.labels(reason=reason).inc()
        self.reason = reason
        telemetry.FEED_STATUS_STALE.set(0 if reason is None else 1)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, or less when a frame or a report changed the verdict meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout=max(seconds, 0.0))
