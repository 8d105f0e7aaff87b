"""Override of channels-redis: its pub/sub channel layer, the reader idling without a timer ten times a
second.

Each shard's reader asks Redis for the next message with a 0.1 s timeout, so an idle process wakes
ten times a second to find nothing: 2.5 of the 3.5 ms of CPU per second an idle server spent
(measured with 1 and 100 open sockets), which at 100 sockets and one frame a second was a third of
the CPU per delivered frame. A message ends the wait as soon as it arrives whatever the timeout, so
waiting up to ``RECEIVE_WAIT`` seconds costs no latency; the loop is otherwise upstream's.

The settings name ``PubSubChannelLayer`` as the channel layer's backend when ``REDIS_URL`` is set.
"""

from __future__ import annotations

import asyncio
import logging

from channels_redis.pubsub import RedisPubSubChannelLayer, RedisSingleShardConnection

from conflict_monitor.overrides import COROUTINE, INSTANCE_ATTRIBUTE, METHOD, Member

logger = logging.getLogger(__name__)

_SHARD = "channels_redis.pubsub:RedisSingleShardConnection"

RELIES_ON = [
    Member(
        "channels_redis.pubsub:RedisPubSubChannelLayer",
        "_get_layer",
        METHOD,
        "()",
        why="overridden: the layer it makes gets the patient shards",
    ),
    Member("channels_redis.pubsub:RedisPubSubLoopLayer", "_shards", INSTANCE_ATTRIBUTE, why="the shards of a layer"),
    Member(
        _SHARD,
        "_do_receiving",
        COROUTINE,
        "()",
        read_by="_ensure_receiver",
        why="overridden: the reader loop, with a longer wait; upstream starts it by name",
    ),
    Member(_SHARD, "_pubsub", INSTANCE_ATTRIBUTE, why="the Redis subscription the loop reads"),
    Member(_SHARD, "_receive_message", METHOD, "(message)", why="hands each message on, as upstream's loop does"),
]

CHECKED_AGAINST = {"channels-redis": "4.3.0"}

MEASURED_GAIN = {
    "`PubSubChannelLayer`": (
        "10 Redis polls a second gone: 2.5 of the 3.5 ms CPU per second an idle server spent, a third of the CPU "
        "per delivered message at 100 sockets and one frame a second (docs/performance.md)"
    ),
}

RECEIVE_WAIT = 1.0


class _PatientShard(RedisSingleShardConnection):
    async def _do_receiving(self):
        while True:
            try:
                if self._pubsub and self._pubsub.subscribed:
                    message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=RECEIVE_WAIT)
                    self._receive_message(message)
                else:
                    await asyncio.sleep(0.1)
            except (TimeoutError, asyncio.CancelledError, GeneratorExit):
                raise
            except BaseException:
                logger.exception("Unexpected exception in receive task")
                await asyncio.sleep(1)


class PubSubChannelLayer(RedisPubSubChannelLayer):
    def _get_layer(self):
        layer = super()._get_layer()
        for shard in layer._shards:
            if type(shard) is RedisSingleShardConnection:
                # Before its reader starts (the first subscribe starts it): only the loop differs.
                shard.__class__ = _PatientShard
        return layer
