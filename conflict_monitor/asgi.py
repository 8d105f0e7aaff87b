"""ASGI entry point: HTTP through Django, WebSocket through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "conflict_monitor.settings")

# Django must be set up before anything imports models.
django_asgi_app = get_asgi_application()

from django.conf import settings  # noqa: E402

# Refuse to serve without a key: Django raises "The SECRET_KEY setting must not be empty" here.
settings.SECRET_KEY  # noqa: B018

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from monitoring.body_limit import BodySizeLimitMiddleware  # noqa: E402
from monitoring.broadcaster import lifespan_app, start_embedded_broadcaster_with_server  # noqa: E402
from monitoring.http_metrics import HttpMetricsMiddleware  # noqa: E402
from monitoring.origins import TrustedOriginValidator  # noqa: E402
from monitoring.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": HttpMetricsMiddleware(BodySizeLimitMiddleware(django_asgi_app)),
        # No AuthMiddlewareStack: the consumer looks up a session only when the feed is private
        # (monitoring.feed.session), instead of on every handshake for the socket's whole life.
        "websocket": TrustedOriginValidator(URLRouter(websocket_urlpatterns)),
        # Servers that speak ASGI lifespan start the embedded broadcaster here; daphne does not, see below.
        "lifespan": lifespan_app,
    }
)

# The embedded broadcaster (alert evaluation and webhooks included) starts with the server, not with
# the first WebSocket (docs/alerts.md). A no-op with Redis: run_broadcaster processes evaluate there.
start_embedded_broadcaster_with_server()
