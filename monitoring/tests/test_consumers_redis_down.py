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
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
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
