"""Initial state + events == fresh state (zulip's rule for its event system).

A client that took the snapshot of the status, alerts and per-source topics, then applied every
frame each write caused, holds what a fresh snapshot holds: for every write that changes what the
feed carries (ingest, runs, rule evaluation, acknowledge, resolve, silence), in the order an operator
would do them. Frames are read from the feed store's history, as a resuming client gets them.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone

from monitoring import events
from monitoring.feed.registry import get_store
from monitoring.models import Alert
from monitoring.selectors import active_alerts, per_source_status, pipeline_status
from monitoring.services.alerts import acknowledge_alert, evaluate_alerts, resolve_alert
from monitoring.services.feed import publish_alert_changes, publish_status
from monitoring.services.silences import create_silence
from monitoring.tests.factories import GEO_RULE, DataQualityMetricFactory, PipelineRunFactory

pytestmark = pytest.mark.django_db(transaction=True)


class Client:
    """A feed client's state per topic, built only from frames."""

    def __init__(self) -> None:
        self.state: dict[str, object] = {}
        self.seq: dict[str, tuple[str, int]] = {}

    def apply(self, text: str) -> None:
        frame = json.loads(text)
        topic, kind, data = frame["topic"], frame["type"], frame["data"]
        epoch, seq = self.seq.get(topic, (frame["epoch"], 0))
        assert (frame["epoch"], frame["seq"]) == (epoch, seq + 1) or seq == 0, f"{topic}: a gap at {frame['seq']}"
        self.seq[topic] = (frame["epoch"], frame["seq"])
        if kind == events.ALERTS_UPDATE:
            self.state[topic] = {alert["id"]: alert for alert in data["alerts"]}
        elif kind in (events.ALERT_FIRED, events.ALERT_UPDATED, events.ALERT_ACKNOWLEDGED):
            self.state.setdefault(topic, {})[data["id"]] = data
        elif kind == events.ALERT_RESOLVED:
            self.state.setdefault(topic, {}).pop(data["id"], None)
        else:
            self.state[topic] = data

    async def catch_up(self) -> None:
        """Every frame published since the last one applied, topic by topic, from history."""
        store = get_store()
        for topic, (epoch, seq) in list(self.seq.items()):
            history = await store.since(topic=topic, epoch=epoch, since_seq=seq, limit=1000)
            assert history.gap is None, history.gap
            for frame in history.frames:
                self.apply(frame.text)

    async def subscribe(self, topic: str) -> None:
        for frame in await get_store().snapshot(topic=topic):
            self.apply(frame.text)


def tick() -> dict:
    """What the broadcaster does each interval: evaluate, push the changes, publish the status."""
    document = pipeline_status()
    changes = evaluate_alerts(document=document)
    async_to_sync(publish_alert_changes)(changes=changes, with_list=False)
    document = pipeline_status()
    async_to_sync(publish_status)(document=document)
    return document


def assert_equivalent(client: Client, *, after_tick: bool) -> None:
    async_to_sync(client.catch_up)()
    fresh = Client()
    for topic in client.seq:
        async_to_sync(fresh.subscribe)(topic)
    assert client.state == fresh.state, "snapshot + frames differs from a fresh snapshot"
    assert client.state[events.ALERTS_TOPIC] == {a["id"]: a for a in active_alerts()}, "alerts differ from the database"
    if not after_tick:
        return  # the status document follows at the broadcaster's next push (requested by the write)
    latest = client.state[events.STATUS_TOPIC]
    assert {a["id"] for a in latest["alerts"]} == set(client.state[events.ALERTS_TOPIC])
    for name, detail in per_source_status(latest).items():
        assert client.state[events.source_topic(name)] == detail


def test_every_write_the_feed_carries_leaves_a_following_client_equal_to_a_fresh_one(settings, feed_backend):
    settings.MONITORING_ALERT_RULES = [GEO_RULE]
    now = timezone.now()
    for source in ("gdelt", "acled"):
        PipelineRunFactory(source=source, started_at=now - timedelta(minutes=20))
        DataQualityMetricFactory(source=source, timestamp=now - timedelta(minutes=10))
    tick()
    client = Client()
    for topic in (events.STATUS_TOPIC, events.ALERTS_TOPIC, events.source_topic("gdelt"), events.source_topic("acled")):
        async_to_sync(client.subscribe)(topic)

    writes = [
        (
            "ingest: gdelt collapses",
            lambda: DataQualityMetricFactory(
                source="gdelt", timestamp=now - timedelta(minutes=5), geocoding_attempts=400, geocoding_successes=40
            ),
        ),
        ("evaluation opens an alert", tick),
        ("a failed run", lambda: PipelineRunFactory(source="acled", status="failed", error="HTTP 403")),
        ("acknowledge", lambda: acknowledge_alert(alert_id=Alert.objects.get().pk, user=None)),
        (
            "silence",
            lambda: create_silence(
                rule_name="geo-low", source="gdelt", ends_at=timezone.now() + timedelta(hours=1), reason="vendor fix"
            ),
        ),
        (
            "ingest: acled collapses too",
            lambda: DataQualityMetricFactory(
                source="acled", timestamp=now - timedelta(minutes=4), geocoding_attempts=300, geocoding_successes=30
            ),
        ),
        ("evaluation opens a second alert", tick),
        ("resolve by hand", lambda: resolve_alert(alert_id=Alert.objects.get(source="gdelt").pk, user=None)),
        ("the next tick", tick),
    ]
    for what, write in writes:
        write()
        try:
            assert_equivalent(client, after_tick=write is tick)
        except AssertionError as exc:
            raise AssertionError(f"after {what}: {exc}") from exc
    assert Alert.objects.filter(state="resolved").count() == 1
