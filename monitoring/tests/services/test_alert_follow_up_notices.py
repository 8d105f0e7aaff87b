"""Every page is closed: a paged alert gets one resolution notice however it ends (evaluation, API, admin),
and one acknowledgement notice, decided by its own delivery record, not by the resolving process's webhook
URL. The broadcaster (URL set) evaluates and delivers; the web process that resolves has no URL."""

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from monitoring.models import Alert, NotificationDelivery
from monitoring.selectors import pipeline_status
from monitoring.services.alerts import acknowledge_alert, evaluate_alerts, resolve_alert
from monitoring.services.metrics import MetricInput, record_metrics
from monitoring.services.notification_sender import deliver_due
from monitoring.tests.factories import GEO_RULE

pytestmark = pytest.mark.django_db


class Hook:
    def __init__(self) -> None:
        self.bodies: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server naming)
                hook.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def events(self, alert: Alert) -> list[str]:
        return [c["event"] for body in self.bodies for c in body["changes"] if c["alert_id"] == alert.pk]


class Processes:
    """Switches the settings between the broadcaster's (webhook URL set) and a web process's (none)."""

    def __init__(self, settings, hook: Hook) -> None:
        self.settings = settings
        self.hook = hook

    def broadcaster(self) -> None:
        self.settings.MONITORING_WEBHOOK_URL = self.hook.url

    def web(self) -> None:
        self.settings.MONITORING_WEBHOOK_URL = None

    def evaluate(self, *, as_web: bool = False):
        self.web() if as_web else self.broadcaster()
        return evaluate_alerts(document=pipeline_status())

    def deliver(self) -> None:
        self.broadcaster()
        now = timezone.now()
        for _ in range(3):
            deliver_due(now=now)
            now += timedelta(minutes=15)


@pytest.fixture
def processes(settings):
    settings.MONITORING_ALERT_RULES = [GEO_RULE]
    hook = Hook()
    yield Processes(settings, hook)
    hook.server.shutdown()
    hook.server.server_close()


def report(source: str, successes: int, attempts: int = 100, minutes_ago: int = 5) -> None:
    at = timezone.now() - timedelta(minutes=minutes_ago)
    record_metrics(
        metrics=[MetricInput(source=source, timestamp=at, geocoding_attempts=attempts, geocoding_successes=successes)]
    )


def fire(processes: Processes) -> tuple[Alert, Alert]:
    """A critical alert (paged) for gdelt and a medium one (never paged) for acled, by the broadcaster."""
    report("gdelt", 60, minutes_ago=50)
    report("acled", 84, minutes_ago=50)
    alerts = {change.alert.source: change.alert for change in processes.evaluate()}
    assert list(NotificationDelivery.objects.values_list("alert__source", "event")) == [("gdelt", "fired")]
    return alerts["gdelt"], alerts["acled"]


def events(alert: Alert) -> list[str]:
    return sorted(NotificationDelivery.objects.filter(alert=alert).values_list("event", flat=True))


@pytest.fixture
def operator(django_user_model):
    return django_user_model.objects.create_superuser("oncall", password="pw")


@pytest.fixture
def api(client, operator):
    client.force_login(operator)

    def post(alert: Alert, transition: str):
        response = client.post(
            f"/api/v1/monitoring/alerts/{alert.pk}/{transition}",
            data={"comment": "handled"},
            content_type="application/json",
        )
        assert response.status_code == 200, response.content
        return response.json()

    return post


@pytest.fixture
def admin_action(client, operator):
    client.force_login(operator)

    def post(alerts: list[Alert], action: str) -> None:
        response = client.post(
            "/admin/monitoring/alert/", {"action": action, "_selected_action": [a.pk for a in alerts]}
        )
        assert response.status_code == 302, response.content

    return post


def _resolve_by_evaluation(processes, alerts, *, api, admin_action, operator) -> None:
    # The condition clears; even an evaluation that ran without a URL would close the page.
    report("gdelt", 1000, attempts=1000, minutes_ago=1)
    report("acled", 1000, attempts=1000, minutes_ago=1)
    changes = processes.evaluate(as_web=True)
    assert {c.alert.pk for c in changes if c.kind == "resolved"} == {a.pk for a in alerts}


def _resolve_by_api(processes, alerts, *, api, admin_action, operator) -> None:
    processes.web()
    for alert in alerts:
        assert api(alert, "resolve")["changed"] is True


def _resolve_by_service(processes, alerts, *, api, admin_action, operator) -> None:
    processes.web()
    for alert in alerts:
        assert resolve_alert(alert_id=alert.pk, user=operator)[1] is True


def _resolve_by_admin_action(processes, alerts, *, api, admin_action, operator) -> None:
    processes.web()
    admin_action(alerts, "resolve")


WAYS = {
    "auto-resolve": _resolve_by_evaluation,
    "api": _resolve_by_api,
    "service": _resolve_by_service,
    "admin-bulk-action": _resolve_by_admin_action,
}


@pytest.mark.parametrize("way", list(WAYS))
def test_a_paged_alert_gets_exactly_one_resolution_notice_however_it_ends(processes, api, admin_action, operator, way):
    paged, quiet = fire(processes)
    WAYS[way](processes, [paged, quiet], api=api, admin_action=admin_action, operator=operator)
    assert Alert.objects.get(pk=paged.pk).state == Alert.State.RESOLVED
    assert events(paged) == ["fired", "resolved"]
    assert events(quiet) == []  # never paged: nothing to close
    processes.deliver()
    assert processes.hook.events(paged) == ["fired", "resolved"]
    assert processes.hook.bodies[-1]["text"].startswith("[RESOLVED]")
    assert processes.hook.events(quiet) == []


@pytest.mark.parametrize("way", list(WAYS))
def test_resolving_again_by_any_way_sends_no_second_notice(processes, api, admin_action, operator, way):
    paged, quiet = fire(processes)
    WAYS[way](processes, [paged, quiet], api=api, admin_action=admin_action, operator=operator)
    processes.deliver()
    # Every other way, again: the alert is resolved already, nothing changes and nothing is sent.
    processes.web()
    assert api(paged, "resolve")["changed"] is False
    assert resolve_alert(alert_id=paged.pk, user=operator)[1] is False
    admin_action([paged], "resolve")
    processes.evaluate()
    processes.deliver()
    assert events(paged) == ["fired", "resolved"]
    assert processes.hook.events(paged) == ["fired", "resolved"]


@pytest.mark.parametrize("via", ["api", "admin-bulk-action", "service"])
def test_a_paged_alert_gets_one_acknowledgement_notice_then_its_resolution(processes, api, admin_action, operator, via):
    paged, quiet = fire(processes)
    processes.web()
    for _ in range(2):  # acknowledging twice changes nothing the second time
        if via == "api":
            api(paged, "acknowledge")
            api(quiet, "acknowledge")
        elif via == "admin-bulk-action":
            admin_action([paged, quiet], "acknowledge")
        else:
            acknowledge_alert(alert_id=paged.pk, user=operator)
            acknowledge_alert(alert_id=quiet.pk, user=operator)
    assert events(paged) == ["acknowledged", "fired"]
    assert events(quiet) == []
    processes.deliver()
    assert processes.hook.events(paged) == ["fired", "acknowledged"]
    assert processes.hook.bodies[-1]["text"].startswith("[ACKNOWLEDGED]")
    _resolve_by_evaluation(processes, [paged, quiet], api=api, admin_action=admin_action, operator=operator)
    processes.deliver()
    assert processes.hook.events(paged) == ["fired", "acknowledged", "resolved"]
    assert processes.hook.events(quiet) == []


def test_the_resolving_process_does_not_need_the_url_but_the_firing_decides(processes, operator):
    """A page queued by the broadcaster is closed by a URL-less web process; an alert that fired while the
    broadcaster had no URL was never paged, so resolving it (with a URL set) sends nothing."""
    report("gdelt", 60, minutes_ago=50)
    (change,) = processes.evaluate(as_web=True)  # no URL where it fired: no page
    assert events(change.alert) == []
    processes.broadcaster()
    resolve_alert(alert_id=change.alert.pk, user=operator)
    assert events(change.alert) == []
