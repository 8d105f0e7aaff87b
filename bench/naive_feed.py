"""The naive live feed, as a baseline for ``db_per_tick.py``; not part of the product.

Every WebSocket connection runs its own loop: compute ``monitoring.selectors.pipeline_status()``
and send it, every ``NAIVE_FEED_INTERVAL`` seconds (default 5, the product's broadcast interval).
No channel layer, no broadcaster: the database work grows with the number of connections, which is
what the project's broadcaster exists to avoid.

    PYTHONPATH=bench .venv/bin/daphne naive_feed:application   # with the project's settings env
"""

from __future__ import annotations

import asyncio
import json
import os

from django.core.asgi import get_asgi_application

django_application = get_asgi_application()  # sets Django up before the project imports below

from channels.db import database_sync_to_async  # noqa: E402
from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.core.serializers.json import DjangoJSONEncoder  # noqa: E402
from django.urls import path  # noqa: E402

from monitoring.selectors import pipeline_status  # noqa: E402

INTERVAL = float(os.environ.get("NAIVE_FEED_INTERVAL", "5"))
PATH = "ws/naive-status"


class NaiveStatusConsumer(AsyncWebsocketConsumer):
    # No channel layer: nothing is shared between connections.
    channel_layer_alias = "naive-feed-has-no-layer"

    async def connect(self) -> None:
        await self.accept()
        self.sender = asyncio.ensure_future(self._send_every_interval())

    async def disconnect(self, code: int) -> None:
        self.sender.cancel()

    async def _send_every_interval(self) -> None:
        seq = 0
        while True:
            document = await database_sync_to_async(pipeline_status)()
            seq += 1
            frame = {"type": "pipeline_status_update", "seq": seq, "data": document}
            await self.send(text_data=json.dumps(frame, cls=DjangoJSONEncoder, separators=(",", ":")))
            await asyncio.sleep(INTERVAL)


application = ProtocolTypeRouter(
    {
        "http": django_application,
        "websocket": URLRouter([path(PATH, NaiveStatusConsumer.as_asgi())]),
    }
)
