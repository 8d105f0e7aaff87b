"""Client input checks of one connection: frame kind and size, a rate limit, JSON, the message
schema (``monitoring.events``), and strikes that end a connection that keeps sending bad frames."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from monitoring import events
from monitoring.feed.ratelimit import StrikeCounter, TokenBucket

SEND = "send"  # answer with an error frame
QUIET = "quiet"  # say nothing (a flood already got its error this second)
CLOSE = "close"  # too many strikes: close with CLOSE_POLICY_VIOLATION


@dataclass(frozen=True)
class Refusal:
    code: str
    message: str
    request_type: str | None = None
    throttle: bool = False


class InputGuard:
    # One per open socket: slots keep thousands of them small (no per-instance dict).
    __slots__ = ("limit", "bucket", "strikes", "last_rate_error")

    def __init__(self, *, max_frame_bytes: int, rate: float, burst: int, max_strikes: int) -> None:
        self.limit = max_frame_bytes
        self.bucket = TokenBucket(rate=rate, burst=burst)
        self.strikes = StrikeCounter(limit=max_strikes)
        self.last_rate_error = 0.0

    @classmethod
    def configured(cls, settings) -> InputGuard:
        """From the ``WEBSOCKET_*`` settings (``django.conf.settings``, passed in by the consumer)."""
        return cls(
            max_frame_bytes=settings.WEBSOCKET_MAX_FRAME_BYTES,
            rate=settings.WEBSOCKET_RATE_PER_SECOND,
            burst=settings.WEBSOCKET_RATE_BURST,
            max_strikes=settings.WEBSOCKET_MAX_STRIKES,
        )

    def parse(self, text_data: str | None) -> events.ClientMessage | Refusal:
        """The client's message, or why it is refused."""
        if text_data is None:
            return Refusal(events.BINARY_NOT_SUPPORTED, "Send JSON text frames; binary frames are not accepted.")
        if len(text_data) > self.limit or len(text_data.encode("utf-8", "surrogatepass")) > self.limit:
            return Refusal(events.FRAME_TOO_LARGE, f"Frames are limited to {self.limit} bytes.")
        if not self.bucket.take():
            return Refusal(events.RATE_LIMITED, "Too many messages; slow down.", throttle=True)
        try:
            content = json.loads(text_data)
        except (ValueError, RecursionError):
            return Refusal(events.INVALID_JSON, "The frame is not valid JSON.")
        try:
            return events.parse_client_message(content)
        except events.ClientMessageError as exc:
            return Refusal(exc.code, str(exc), exc.request_type)

    def verdict(self, refusal: Refusal) -> str:
        """Count the strike; whether to answer, stay quiet or close."""
        if self.strikes.add():
            return CLOSE
        if refusal.throttle:
            # One rate-limit error per second is enough; answering every flooded frame feeds the flood.
            now = time.monotonic()
            if now - self.last_rate_error < 1.0:
                return QUIET
            self.last_rate_error = now
        return SEND
