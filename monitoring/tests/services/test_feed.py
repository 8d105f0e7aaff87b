"""Publishing to the live feed, on the in-memory backends and on Redis: a frame is stored with its seq
and reaches the topic's group; a status republishes only the derived topics that changed; the first
reader of an empty feed gets a computed status; status-push hints go out only after a commit."""

import asyncio
import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction

from monitoring import events
from monitoring.feed.frames import frame_from_event, is_status_dirty, stale_reason_from_event
from monitoring.feed.registry import get_store
from monitoring.selectors import pipeline_status
from monitoring.services import feed
from monitoring.tests.factories import DataQualityMetricFactory, PipelineRunFactory

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


async def _member_of(topic: str) -> str:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(events.group_name(topic), channel)
    return channel


@pytest.mark.usefixtures("feed_backend")
async def test_a_publish_is_stored_with_the_next_seq_and_reaches_the_topics_group():
    channel = await _member_of("source:gdelt")
    first = await feed.publish(topic="source:gdelt", data={"n": 1})
    second = await feed.publish(topic="source:gdelt", data={"n": 2})
    assert (first.seq, second.seq) == (1, 2)
    assert await get_store().latest(topic="source:gdelt") == second
    received = [frame_from_event(await get_channel_layer().receive(channel)) for _ in range(2)]
    assert received == [first, second]


@pytest.mark.usefixtures("feed_backend")
async def test_a_status_republishes_only_the_derived_topics_that_changed():
    await database_sync_to_async(DataQualityMetricFactory)(source="acled")
    await database_sync_to_async(PipelineRunFactory)(source="gdelt")
    document = await database_sync_to_async(pipeline_status)()
    published = await feed.publish_status(document=document)
    assert set(published) == {"alerts", "source:acled", "source:gdelt"}
    again = await feed.publish_status(document=document, previous=published)
    assert again == published
    store = get_store()
    assert (await store.latest(topic="status")).seq == 2  # the heartbeat goes out every time
    assert (await store.latest(topic="source:acled")).seq == 1
    assert (await store.latest(topic="alerts")).seq == 1


@pytest.mark.usefixtures("feed_backend")
async def test_the_first_snapshot_of_an_empty_feed_publishes_a_computed_status():
    frames = await feed.snapshot_frames(topic="alerts")
    assert [frame.seq for frame in frames] == [1]
    status = await get_store().latest(topic="status")
    assert status is not None and status.seq == 1
    assert await feed.ensure_status_frame() == status  # not computed twice


@pytest.mark.usefixtures("feed_backend")
async def test_reporting_the_status_unavailable_reaches_status_followers():
    channel = await _member_of("status")
    await feed.publish_status_unavailable(reason=events.STALE_DATABASE_UNAVAILABLE)
    event = await get_channel_layer().receive(channel)
    assert stale_reason_from_event(event) == events.STALE_DATABASE_UNAVAILABLE


@pytest.mark.usefixtures("feed_backend")
async def test_reporting_the_status_unavailable_never_raises_while_the_layer_is_away(settings):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:1/0", "socket_connect_timeout": 1}]},
        }
    }
    await feed.publish_status_unavailable(reason=events.STALE_STATUS_FAILED)


@pytest.mark.usefixtures("redis_feed")
async def test_a_status_push_hint_reaches_the_broadcaster_only_after_the_commit():
    def write(reason: str, *, commit: bool) -> None:
        try:
            with transaction.atomic():
                feed.request_status_push_on_commit(reason=reason)
                if not commit:
                    raise RuntimeError("rolled back")
        except RuntimeError:
            pass

    # The broadcaster's channel is not under the layer's prefix: other tests' hints may pass by too.
    tag = uuid.uuid4().hex
    layer = get_channel_layer()
    listening = asyncio.ensure_future(_reasons_until(layer, f"committed-{tag}", tag))
    await asyncio.sleep(0.2)  # subscribed: pub/sub drops what was sent before
    await database_sync_to_async(write)(f"rolled-back-{tag}", commit=False)
    await database_sync_to_async(write)(f"committed-{tag}", commit=True)
    assert await asyncio.wait_for(listening, timeout=5) == [f"committed-{tag}"]


async def _reasons_until(layer, last: str, tag: str) -> list[str]:
    reasons: list[str] = []
    while not reasons or reasons[-1] != last:
        event = await layer.receive(feed.BROADCASTER_CHANNEL)
        if is_status_dirty(event) and tag in event["reason"]:
            reasons.append(event["reason"])
    return reasons


async def test_an_in_memory_layer_gets_hints_only_with_a_broadcaster_in_this_process(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    layer = get_channel_layer()
    try:
        await sync_to_async(feed.request_status_push)(reason="alone")
        feed.mark_in_process_broadcaster(True)
        await sync_to_async(feed.request_status_push)(reason="embedded")
    finally:
        feed.mark_in_process_broadcaster(False)
    event = await asyncio.wait_for(layer.receive(feed.BROADCASTER_CHANNEL), timeout=5)
    assert event["reason"] == "embedded"
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive(feed.BROADCASTER_CHANNEL), timeout=0.5)


@pytest.mark.usefixtures("feed_backend")
async def test_a_source_with_the_longest_name_ingest_accepts_is_published_to_its_followers():
    """Regression: without Redis its group name was too long for the channel layer: every status publish failed."""
    source = "s" * 100
    topic = events.source_topic(source)
    channel = await _member_of(topic)
    await database_sync_to_async(DataQualityMetricFactory)(source=source)
    document = await database_sync_to_async(pipeline_status)()
    published = await feed.publish_status(document=document)
    assert topic in published
    assert frame_from_event(await get_channel_layer().receive(channel)).topic == topic
