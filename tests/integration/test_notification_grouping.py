"""Grouping with real processes: a server takes the ingest, the broadcaster evaluates and sends one
notice per alert group to a local receiver (generic JSON) or to a local stub of Slack's Web API (one
message, edited when the incident resolves). Prints the time from ingest to notice."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from monitoring.tests.slack_stub import TOKEN, SlackStub
from monitoring.tests.webhook_receiver import Receiver
from tests.integration.cluster import running_cluster
from tests.integration.test_alerts_without_viewers import API, call, eventually

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]
GROUP_WAIT = 3.0


def timers(group_wait: float = GROUP_WAIT) -> dict[str, str]:
    return {
        "WEBSOCKET_BROADCAST_INTERVAL": "1",
        "MONITORING_NOTIFY_GROUP_BY": "source",
        "MONITORING_NOTIFY_GROUP_WAIT": str(group_wait),
        "MONITORING_NOTIFY_GROUP_INTERVAL": "2",
    }


def ingest(port: int, key: str, *, source: str, attempts: int, good: float) -> float:
    """Report one batch 5 minutes ago; returns when the server accepted it (monotonic clock)."""
    at = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    passed = round(attempts * good)
    metric = {
        "source": source,
        "timestamp": at,
        "geocoding_attempts": attempts,
        "geocoding_successes": passed,
        "validation_attempts": attempts,
        "validation_passes": passed,
    }
    status, body = call(port, f"{API}/metrics", body=[metric], headers={"Authorization": f"Token {key}"})
    assert status == 201, body
    return time.monotonic()


def incident_then_recovery(port: int, key: str) -> float:
    """acled healthy; gdelt's geocoding and validation collapse together (two critical alerts of one
    source, while the overall rates stay above the paging levels). Returns the ingest time."""
    ingest(port, key, source="acled", attempts=2000, good=0.99)
    return ingest(port, key, source="gdelt", attempts=200, good=0.10)


def recover(port: int, key: str) -> None:
    ingest(port, key, source="gdelt", attempts=8000, good=0.99)


@pytest.mark.parametrize("group_wait", [0.0, GROUP_WAIT])
def test_one_source_incident_is_one_notice_and_one_resolution(tmp_path, group_wait):
    from monitoring.services.tokens import create_ingest_token

    _, key = create_ingest_token(name="scrapers")
    with (
        Receiver(status=200) as receiver,
        running_cluster(
            logs=tmp_path, servers=("a",), broadcasters=1, MONITORING_WEBHOOK_URL=receiver.url, **timers(group_wait)
        ) as cluster,
    ):
        port = cluster.port("a")
        ingested = incident_then_recovery(port, key)
        eventually(lambda: receiver.requests, bool, timeout=group_wait + 15, what="the incident's notice")
        took = time.monotonic() - ingested
        time.sleep(GROUP_WAIT + 2)  # later evaluations and sender rounds add no second notice
        (first,) = [body for _, body in receiver.requests]
        recover(port, key)
        eventually(lambda: len(receiver.requests) >= 2, bool, timeout=20, what="the resolution notice")
        time.sleep(3)
        bodies = [body for _, body in receiver.requests]
    print(f"\ningest → notice: {took:.2f} s with group_wait {group_wait:.0f} s")
    assert first["group_key"] == "source=gdelt" and first["event"] == "fired"
    assert sorted(a["rule"] for a in first["alerts"]) == ["geocoding-rate-low", "validation-rate-low"]
    assert {a["severity"] for a in first["alerts"]} == {"critical"}
    assert group_wait - 0.5 <= took <= group_wait + 4, "sent after group_wait, within a tick and a sender round"
    assert len(bodies) == 2, [b["text"] for b in bodies]
    closing = bodies[1]
    assert (closing["group_key"], closing["event"], closing["status"]) == ("source=gdelt", "resolved", "resolved")
    assert sorted(c["alert_id"] for c in closing["changes"]) == sorted(a["id"] for a in first["alerts"])


def test_the_slack_bot_posts_one_message_per_group_and_edits_it_when_resolved(tmp_path):
    from monitoring.services.tokens import create_ingest_token

    _, key = create_ingest_token(name="scrapers")
    with (
        SlackStub() as slack,
        running_cluster(
            logs=tmp_path,
            servers=("a",),
            broadcasters=1,
            MONITORING_SLACK_BOT_TOKEN=TOKEN,
            MONITORING_SLACK_CHANNEL="#data-alerts",
            MONITORING_SLACK_API_URL=slack.api_url,
            **timers(),
        ) as cluster,
    ):
        port = cluster.port("a")
        incident_then_recovery(port, key)
        eventually(lambda: slack.calls, bool, timeout=GROUP_WAIT + 15, what="the group's Slack message")
        recover(port, key)
        eventually(lambda: len(slack.calls) >= 2, bool, timeout=20, what="the edit on resolution")
        time.sleep(3)
        calls = list(slack.calls)
    assert [method for method, _ in calls] == ["chat.postMessage", "chat.update"]
    (_, posted), (_, edited) = calls
    assert posted["channel"] == "#data-alerts" and posted["text"] == "[CRITICAL] source=gdelt: 2 firing"
    assert (edited["channel"], edited["ts"]) == ("C0ALERTS", "1700000000.000001")
    assert edited["text"] == "[RESOLVED] source=gdelt: 2 resolved"
