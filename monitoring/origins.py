"""Which browser origins may open the live feed."""

from __future__ import annotations

from channels.security.websocket import OriginValidator
from django.conf import settings


class TrustedOriginValidator(OriginValidator):
    """Origins whose host is in ``ALLOWED_HOSTS``, or listed (scheme, host, port) in ``CSRF_TRUSTED_ORIGINS``.

    Settings are read per connection, not at import. A browser always sends Origin, so a missing one
    means a non-browser client (a script, the pipeline) that cross-site WebSocket hijacking cannot
    involve; such clients still go through the consumer's auth.
    """

    def __init__(self, application):
        super().__init__(application, allowed_origins=[])

    def valid_origin(self, parsed_origin) -> bool:
        return parsed_origin is None or self.validate_origin(parsed_origin)

    def validate_origin(self, parsed_origin) -> bool:
        hosts = list(settings.ALLOWED_HOSTS)
        if settings.DEBUG and not hosts:
            hosts = ["localhost", "127.0.0.1", "[::1]"]
        patterns = hosts + list(settings.CSRF_TRUSTED_ORIGINS)
        return any(pattern == "*" or self.match_allowed_origin(parsed_origin, pattern) for pattern in patterns)
