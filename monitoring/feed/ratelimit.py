from __future__ import annotations

import time
from collections import deque


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up."""

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

    def __init__(self, *, limit: int, window: float = 10.0) -> None:
        self.limit = limit
        self.window = window
        self.times: deque[float] = deque()

    def add(self) -> bool:
        now = time.monotonic()
        self.times.append(now)
        while self.times and self.times[0] < now - self.window:
            self.times.popleft()
        return len(self.times) > self.limit
