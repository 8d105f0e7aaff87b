"""With Redis unreachable the feed refuses politely: close 4000 (reconnect), never an unhandled 1011."""

import pytest
from channels.testing import WebsocketCommunicator

from conflict_monitor.asgi import application
from monitoring import events
from monitoring.feed import registry

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]
DEAD = "redis://127.0.0.1:1/0"  # nothing listens on port 1


@pytest.fixture
def redis_unreachable(settings):
    settings.REDIS_URL = DEAD
    settings.REDIS_SOCKET_TIMEOUT = 1
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "conflict_monitor.overrides.channels_redis.PubSubChannelLayer",
            "CONFIG": {"hosts": [{"address": DEAD, "socket_timeout": 1, "socket_connect_timeout": 1}]},
        }
    }
    settings.WEBSOCKET_EMBEDDED_BROADCASTER = False
    settings.MONITORING_PUBLIC_READ = True
    registry.reset()
    yield
    registry.reset()


async def test_connect_while_redis_is_down_closes_with_the_reconnect_code(redis_unreachable):
    communicator = WebsocketCommunicator(application, "/ws/monitoring/pipeline-status")
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    output = await communicator.receive_output(timeout=10)
    assert output == {"type": "websocket.close", "code": events.CLOSE_RECONNECT}


async def test_a_ticket_handshake_while_the_ticket_store_is_down_closes_with_the_reconnect_code(settings):
    """Redeeming the ticket raises (cache on a closed port): the handshake ends with 4000, not an error."""
    settings.MONITORING_PUBLIC_READ = False
    settings.WEBSOCKET_EMBEDDED_BROADCASTER = False
    settings.REDIS_URL = None
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": DEAD,
            "OPTIONS": {"socket_timeout": 1, "socket_connect_timeout": 1},
        }
    }
    registry.reset()
    try:
        communicator = WebsocketCommunicator(application, "/ws/monitoring/pipeline-status?ticket=abc")
        connected, _ = await communicator.connect(timeout=10)
        assert connected
        output = await communicator.receive_output(timeout=10)
        assert output == {"type": "websocket.close", "code": events.CLOSE_RECONNECT}
    finally:
        registry.reset()
