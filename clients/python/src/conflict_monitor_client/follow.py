"""``AsyncMonitor.follow()``: the status documents of the private live feed, in order, across reconnects.

One WebSocket with the read key in its ``Authorization`` header. The position (epoch and highest seq) is
kept by ``feed.Cursor``; every reconnect asks the server to resume after it (``?since_seq=&epoch=``), so
what happened while the socket was down is replayed from the server's history, once, in order, or, when
history cannot fill the gap, the server says ``resync`` and a fresh snapshot follows (``resynced``).
Reconnects back off with jitter (``RetryPolicy.backoff``); close codes that retrying cannot mend raise.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable
from typing import Generic, TypeVar

import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from conflict_monitor_client.errors import ConflictMonitorError, ConnectionFailed, error_from_answer
from conflict_monitor_client.feed import (
    Cursor,
    FeedPosition,
    Reconnect,
    StatusStale,
    StatusUpdate,
    close_verdict,
    feed_url,
    parse_frame,
)
from conflict_monitor_client.retry import RETRYABLE_STATUSES, RetryPolicy

__all__ = ["DEFAULT_RECONNECT", "Feed"]

logger = logging.getLogger("conflict_monitor_client.feed")

E = TypeVar("E", StatusUpdate, StatusUpdate | StatusStale)
# Doubling from 1 s to 30 s, half of each step random: the dashboard's schedule. ``max_attempts`` is not
# used here: ``give_up_after`` says when a follower stops trying.
DEFAULT_RECONNECT = RetryPolicy(initial_delay=1.0, multiplier=2.0, max_delay=30.0)
# A status document grows with the sources; the default 1 MiB frame limit of websockets is not the server's.
MAX_FRAME_BYTES = 64 * 2**20


class Feed(Generic[E]):
    """What ``AsyncMonitor.follow()`` returns: ``async for update in feed`` yields ``StatusUpdate`` (and, with
    ``stale_notices=True``, ``StatusStale``) until ``aclose()``, the end of ``async with``, or an error that
    reconnecting cannot mend (``AuthenticationFailed``, ``PermissionDenied``, ``FeedClosed``; ``NotFound``
    for a wrong URL; ``ConnectionFailed`` after ``give_up_after`` failed connects in a row).

    Iterate from one task. Breaking out of ``async for`` and iterating again goes on after the last
    document yielded (a new socket, resumed). ``position`` is that document's place (store it and pass it as
    ``follow(since=...)`` to continue in a later process); ``stale`` is the server's latest ``status_stale``
    notice until the next document ends it.
    """

    def __init__(
        self,
        *,
        api_base: str,
        token: str,
        user_agent: str,
        since: FeedPosition | None,
        stale_notices: bool,
        reconnect: RetryPolicy,
        give_up_after: int | None,
        idle_timeout: float,
        open_timeout: float,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if give_up_after is not None and give_up_after < 1:
            raise ValueError("give_up_after must be at least 1 (or None: never give up)")
        if idle_timeout <= 0 or open_timeout <= 0:
            raise ValueError("idle_timeout and open_timeout must be positive")
        self._api_base = api_base
        self._token = token
        self._user_agent = f"{user_agent} websockets/{websockets.__version__}"
        self._cursor = Cursor(since)
        self._stale_notices = stale_notices
        self._policy = reconnect
        self._give_up_after = give_up_after
        self._idle_timeout = idle_timeout
        self._open_timeout = open_timeout
        self._rand = rand
        self._failures = 0  # connects in a row that brought no document
        self._socket: ClientConnection | None = None
        self._closed = False

    @property
    def position(self) -> FeedPosition | None:
        return self._cursor.position

    @property
    def stale(self) -> StatusStale | None:
        return self._cursor.stale

    async def __aenter__(self) -> Feed[E]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the socket; iteration ends."""
        self._closed = True
        socket, self._socket = self._socket, None
        if socket is not None:
            await socket.close()

    def __aiter__(self) -> AsyncIterator[E]:
        # A generator per iteration: asyncio closes an abandoned one (a ``break``), and with it its socket.
        return self._events()

    async def _events(self) -> AsyncIterator[E]:
        socket: ClientConnection | None = None
        delivered = False
        try:
            while not self._closed:
                if socket is None:
                    socket = await self._connect()
                    if socket is None:
                        return
                    delivered = False
                try:
                    text = await asyncio.wait_for(socket.recv(), self._idle_timeout)
                except ConnectionClosed as closed:
                    self._forget(socket)
                    socket = None
                    if self._closed:
                        return
                    await self._after_close(closed.rcvd.code if closed.rcvd else None, delivered=delivered)
                    continue
                except TimeoutError:
                    # Silence: the server repeats the status (or status_stale) every broadcast interval.
                    self._forget(socket)
                    await socket.close()
                    socket = None
                    await self._pause(f"no frame for {self._idle_timeout:g} s")
                    continue
                frame = parse_frame(text)
                if frame is None:
                    continue
                delivered = True
                event = self._cursor.receive(frame)
                if isinstance(event, StatusUpdate):
                    self._failures = 0
                elif event is None or not self._stale_notices:
                    continue
                yield event  # type: ignore[misc]  # E is StatusUpdate, or also StatusStale when asked for
        finally:
            if socket is not None:
                self._forget(socket)
                await socket.close()

    def _forget(self, socket: ClientConnection) -> None:
        if self._socket is socket:
            self._socket = None

    async def _after_close(self, code: int | None, *, delivered: bool) -> None:
        verdict = close_verdict(code, delivered=delivered, token=self._token)
        if isinstance(verdict, ConflictMonitorError):
            raise verdict
        assert isinstance(verdict, Reconnect)
        if verdict.backoff:
            await self._pause(f"connection closed ({'no close frame' if code is None else f'code {code}'})")
        else:
            logger.info("feed connection recycled by the server (code %s); resuming", code)

    async def _connect(self) -> ClientConnection | None:
        """A socket resuming after the position; None when closed meanwhile."""
        while not self._closed:
            url = feed_url(self._api_base, self._cursor.query())
            try:
                socket = await connect(
                    url,
                    additional_headers={"Authorization": f"Bearer {self._token}"},
                    user_agent_header=self._user_agent,
                    open_timeout=self._open_timeout,
                    max_size=MAX_FRAME_BYTES,
                    close_timeout=5,
                )
            except InvalidStatus as exc:
                response = exc.response
                error = error_from_answer(response.status_code, response.body or b"")
                if response.status_code not in RETRYABLE_STATUSES:
                    raise error from None
                reason = str(error)
            except (OSError, TimeoutError, InvalidHandshake) as exc:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                if self._closed:
                    await socket.close()
                    return None
                self._socket = socket
                return socket
            await self._pause(f"cannot connect ({reason})")
        return None

    async def _pause(self, reason: str) -> None:
        self._failures += 1
        if self._give_up_after is not None and self._failures >= self._give_up_after:
            raise ConnectionFailed(f"The live feed: {reason}", attempts=self._failures)
        delay = self._policy.backoff(self._failures, rand=self._rand)
        logger.warning("live feed: %s; reconnecting in %.1f s", reason, delay)
        await asyncio.sleep(delay)
