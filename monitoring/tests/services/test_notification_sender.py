"""Notice delivery: retries with backoff against a real local HTTP server, Slack payloads, giving up."""

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from monitoring.models import Alert, NotificationDelivery
from monitoring.services.notification_sender import claim_next, deliver_due
from monitoring.services.notifications import enqueue_notification

pytestmark = pytest.mark.django_db


class Hook:
    """A webhook endpoint that fails the first ``failures`` requests with 500."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.bodies: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server naming)
                hook.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(500 if len(hook.bodies) <= hook.failures else 200)
                self.end_headers()

            def log_message(self, *args):
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook(settings):
    made = []

    def make(failures: int = 0, style: str = "json") -> Hook:
        endpoint = Hook(failures)
        settings.MONITORING_WEBHOOK_URL = endpoint.url
        settings.MONITORING_WEBHOOK_FORMAT = style
        made.append(endpoint)
        return endpoint

    yield make
    for endpoint in made:
        endpoint.close()


def _alert() -> Alert:
    return Alert.objects.create(
        fingerprint="geo:gdelt",
        rule_name="geo",
        source="gdelt",
        severity="critical",
        summary="Geocoding success rate 60.0% for gdelt",
        evidence={"value": 60.0},
    )


def _run_until_done(rounds: int) -> list[dict]:
    outcomes, now = [], timezone.now()
    for _ in range(rounds):
        outcomes.append(deliver_due(now=now))
        now += timedelta(minutes=15)  # past any backoff
    return outcomes


def test_a_failing_webhook_is_retried_until_it_answers(hook):
    endpoint = hook(failures=2)
    enqueue_notification(alert=_alert(), event="fired")
    outcomes = _run_until_done(4)
    assert outcomes[:3] == [{"sent": 0, "retried": 1, "failed": 0, "notices": 0}] * 2 + [
        {"sent": 1, "retried": 0, "failed": 0, "notices": 1}
    ]
    delivery = NotificationDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("sent", 3)
    assert len(endpoint.bodies) == 3
    body = endpoint.bodies[-1]
    assert (
        body["event"] == "fired"
        and body["alerts"][0]["source"] == "gdelt"
        and body["alerts"][0]["severity"] == "critical"
    )


def test_retries_back_off_instead_of_hammering(hook):
    hook(failures=10)
    enqueue_notification(alert=_alert(), event="fired")
    now = timezone.now()
    assert deliver_due(now=now)["retried"] == 1
    assert deliver_due(now=now + timedelta(milliseconds=100)) == {"sent": 0, "retried": 0, "failed": 0, "notices": 0}
    assert NotificationDelivery.objects.get().next_attempt_at > now


def test_a_delivery_that_never_succeeds_is_marked_failed_and_logged(hook, settings, caplog):
    settings.MONITORING_WEBHOOK_MAX_ATTEMPTS = 3
    hook(failures=100)
    enqueue_notification(alert=_alert(), event="fired")
    outcomes = _run_until_done(5)
    assert sum(o["failed"] for o in outcomes) == 1
    delivery = NotificationDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 3)
    assert "HTTP 500" in delivery.last_error
    assert "gave up after 3 attempts" in caplog.text


def test_slack_format_posts_the_group_message_then_a_short_follow_up(hook):
    from monitoring.services.notifications import enqueue_follow_up

    endpoint = hook(style="slack")
    alert = _alert()
    enqueue_notification(alert=alert, event="fired")
    deliver_due()
    Alert.objects.filter(pk=alert.pk).update(state="resolved")
    alert.refresh_from_db()
    assert enqueue_follow_up(alert=alert, event="resolved")
    deliver_due()
    first, follow_up = endpoint.bodies
    assert first["text"] == "[CRITICAL] source=gdelt: 1 firing"
    assert first["blocks"][0]["type"] == "section"
    assert "Geocoding success rate 60.0% for gdelt" in first["blocks"][1]["text"]["text"]
    assert follow_up["text"] == "[RESOLVED] source=gdelt: 1 resolved\nresolved: Geocoding success rate 60.0% for gdelt"


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_refused_connection_is_logged_and_retried_later(settings, caplog):
    settings.MONITORING_WEBHOOK_URL = f"http://127.0.0.1:{_closed_port()}/hook"
    enqueue_notification(alert=_alert(), event="fired")
    now = timezone.now()
    assert deliver_due(now=now) == {"sent": 0, "retried": 1, "failed": 0, "notices": 0}
    delivery = NotificationDelivery.objects.get()
    assert delivery.status == "pending" and delivery.next_attempt_at > now
    assert "refused" in delivery.last_error.lower()
    assert "notification" in caplog.text and "failed (attempt 1)" in caplog.text


def test_a_webhook_that_never_answers_times_out_and_is_retried(settings):
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the connection, never answers
    try:
        settings.MONITORING_WEBHOOK_URL = f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
        settings.MONITORING_WEBHOOK_TIMEOUT = 0.3
        enqueue_notification(alert=_alert(), event="fired")
        assert deliver_due() == {"sent": 0, "retried": 1, "failed": 0, "notices": 0}
    finally:
        listener.close()
    assert "timed out" in NotificationDelivery.objects.get().last_error


def test_a_sender_claims_one_group_at_a_time_for_longer_than_a_send(settings):
    """Another sender can take the next group meanwhile, but never the one being sent."""
    settings.MONITORING_WEBHOOK_URL = f"http://127.0.0.1:{_closed_port()}/hook"
    settings.MONITORING_WEBHOOK_TIMEOUT = 120
    enqueue_notification(alert=_alert(), event="fired")
    other = Alert.objects.create(fingerprint="geo:acled", rule_name="geo", source="acled", severity="high", summary="x")
    enqueue_notification(alert=other, event="fired")
    assert NotificationDelivery.objects.count() == 2
    now = timezone.now() + timedelta(seconds=1)
    first = claim_next(now)
    second = claim_next(now)
    assert {first.key, second.key} == {"source=gdelt", "source=acled"}
    assert claim_next(now) is None
    assert claim_next(now + timedelta(seconds=3 * 120)) is None, "a claim lapsed before a send could end"
    first.refresh_from_db()
    assert first.claimed_until >= now + timedelta(seconds=3 * 120 + 5)
