from __future__ import annotations

import time


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up."""

    __slots__ = ("rate", "burst", "tokens", "updated")  # one per open socket

    def __init__(self, *, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.updated = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class StrikeCounter:
    """Counts offences in a sliding window; ``add`` says whether the limit is now exceeded."""

    __slots__ = ("limit", "window", "times")  # one per open socket

    def __init__(self, *, limit: int, window: float = 10.0) -> None:
        self.limit = limit
        self.window = window
        # A list, not a deque: one per open socket, and an empty deque costs ~700 bytes.
        self.times: list[float] = []

    def add(self) -> bool:
        now = time.monotonic()
        self.times = [t for t in self.times if t >= now - self.window]
        self.times.append(now)
        return len(self.times) > self.limit
