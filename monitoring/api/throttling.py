"""Rate limits of the API, counted in the ``default`` cache (Redis when ``REDIS_URL`` is set, so every
server process shares them). Each request counts against exactly one scope:

- ``ingest``: a write with an ingest token, per token (its id, whatever address it comes from);
- ``user``: anything by a logged-in user, per user; a read with a token, and anything with a read token
  (its ``POST ws-ticket``), per token;
- ``anon``: anything else, per client address (an IPv6 client per /64).

Rates are ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` (``API_THROTTLE_*``), read when a request is
throttled rather than when DRF is imported, so a changed setting applies. Over the rate, DRF answers
429 with ``Retry-After``; ``monitoring.api.exceptions`` gives it the common error body.

The client address is the ASGI scope's (``REMOTE_ADDR``): behind a proxy, daphne's ``--proxy-headers``
puts the forwarded address there. DRF's own ``get_ident`` would use a raw ``X-Forwarded-For`` whenever
``NUM_PROXIES`` is unset, and a client could choose a new address for every request.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time

from django.core.exceptions import ImproperlyConfigured
from rest_framework.permissions import SAFE_METHODS
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from monitoring.models import IngestToken, TokenScope

logger = logging.getLogger(__name__)
# A cache that is down lets requests through (rate limits are protection, not a dependency); said at
# most once per this many seconds per process.
_WARN_EVERY = 60.0
_last_warning = 0.0


class WindowThrottle(SimpleRateThrottle):
    """A counter per identity and fixed window of the rate's period, incremented atomically in the cache.

    DRF's own ``SimpleRateThrottle`` reads a list of every recent request's time from the cache and
    writes it back: up to N floats each way per request, and concurrent requests in other processes
    overwrite each other's entries, so the limit leaks exactly when many processes share it. A fixed
    window may let up to twice the rate through around a window's edge, never more.
    """

    def get_rate(self) -> str | None:
        # DRF binds THROTTLE_RATES when it is imported; api_settings follows setting changes.
        try:
            return api_settings.DEFAULT_THROTTLE_RATES[self.scope]
        except KeyError:
            raise ImproperlyConfigured(f"No throttle rate for the {self.scope!r} scope") from None

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        ident = self.get_cache_key(request, view)
        if ident is None:
            return True
        now = self.timer()
        window = int(now // self.duration)
        ends = (window + 1) * self.duration
        key = f"{ident}:{window}"
        try:
            count = self._increment(key, timeout=math.ceil(ends - now) + 1)
        except Exception:
            _warn_unavailable()
            return True
        if count <= self.num_requests:
            return True
        self.retry_after = max(1, math.ceil(ends - now))
        return False

    def _increment(self, key: str, *, timeout: int) -> int:
        # Atomic in Redis (INCR) and in the local-memory cache (under its lock). The key outlives its
        # window, so it never expires while it is counted in.
        try:
            return self.cache.incr(key)
        except ValueError:  # the window's first request
            if self.cache.add(key, 1, timeout):
                return 1
            return self.cache.incr(key)  # another request created it meanwhile

    def wait(self) -> int:
        return self.retry_after


def _warn_unavailable() -> None:
    global _last_warning
    now = time.monotonic()
    if now - _last_warning >= _WARN_EVERY:
        _last_warning = now
        logger.warning("rate limits unavailable (the cache does not answer); requests are not throttled", exc_info=True)


def _token(request) -> IngestToken | None:
    return request.auth if isinstance(request.auth, IngestToken) else None


def _user_id(request) -> int | None:
    user = getattr(request, "user", None)
    return user.pk if user is not None and user.is_authenticated else None


class IngestThrottle(WindowThrottle):
    scope = "ingest"

    def get_cache_key(self, request, view) -> str | None:
        token = _token(request)
        if token is None or token.scope != TokenScope.INGEST or request.method in SAFE_METHODS:
            return None
        return f"throttle:ingest:{token.pk}"


class UserThrottle(WindowThrottle):
    scope = "user"

    def get_cache_key(self, request, view) -> str | None:
        user_id = _user_id(request)
        if user_id is not None:
            return f"throttle:user:{user_id}"
        token = _token(request)
        if token is not None and (request.method in SAFE_METHODS or token.scope == TokenScope.READ):
            return f"throttle:user:token-{token.pk}"
        return None


class AnonThrottle(WindowThrottle):
    scope = "anon"

    def get_cache_key(self, request, view) -> str | None:
        if _user_id(request) is not None or _token(request) is not None:
            return None
        address = client_address(request)
        return None if address is None else f"throttle:anon:{address}"


def client_address(request) -> str | None:
    """The scope's client address; an IPv6 one as its /64, which one client usually holds whole.

    None without an address (a Unix socket without proxy headers): no client can be told apart."""
    address = request.META.get("REMOTE_ADDR")
    if not address:
        return None
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address[:100]
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)
