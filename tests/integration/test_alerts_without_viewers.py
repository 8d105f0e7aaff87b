"""Alert evaluation and paging run with the server, not with the first viewer, and exactly once per
deployment shape; every page is closed, whichever process resolves the alert (docs/alerts.md).

Real processes, and no WebSocket is ever opened.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.integration.cluster import ROOT, free_port, running_cluster

API = "/api/v1/monitoring"
# These tests are about who evaluates and pages, not grouping (tests/integration/test_notification_grouping.py).
NO_GROUP_WAIT = {"MONITORING_NOTIFY_GROUP_WAIT": "0", "MONITORING_NOTIFY_GROUP_INTERVAL": "0"}


class Receiver:
    """A local webhook endpoint that records every notice it is sent."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver.lock:
                    receiver.bodies.append(body)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def notices(self) -> list[tuple[str, int, str]]:
        """(event, alert id, rule) of each alert change announced, in order (a grouped notice carries several)."""
        with self.lock:
            bodies = list(self.bodies)
        found = []
        for body in bodies:
            rules = {alert["id"]: alert["rule"] for alert in body["alerts"]}
            found += [(change["event"], change["alert_id"], rules[change["alert_id"]]) for change in body["changes"]]
        return found

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    endpoint = Receiver()
    yield endpoint
    endpoint.close()


def call(
    port: int,
    path: str,
    *,
    body: object = None,
    headers: dict | None = None,
    opener: urllib.request.OpenerDirector | None = None,
) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 (http://127.0.0.1 only)
        f"http://127.0.0.1:{port}{path}",
        data=data,
        headers={"Content-Type": "application/json", **(headers or {})},
        method="GET" if body is None else "POST",
    )
    try:
        with (opener or urllib.request.build_opener()).open(request, timeout=20) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def eventually(read: Callable[[], object], predicate: Callable[[object], bool], *, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = read()
        except OSError:
            value = None
        if value is not None and predicate(value):
            return value
        assert time.monotonic() < deadline, f"{what}: last value {value!r}"
        time.sleep(0.2)


def report_geocoding_collapse(port: int, key: str) -> None:
    """200 attempts, 10 % geocoded, 5 minutes ago: far under geocoding-rate-low's 70 % (min sample 50)."""
    at = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    metric = {"source": "gdelt", "timestamp": at, "geocoding_attempts": 200, "geocoding_successes": 20}
    status, body = call(port, f"{API}/metrics", body=[metric], headers={"Authorization": f"Token {key}"})
    assert status == 201, body


def firing_geocoding_alerts(port: int) -> list[dict]:
    status, body = call(port, f"{API}/alerts?state=firing")
    assert status == 200, body
    return [alert for alert in body["results"] if alert["rule"] == "geocoding-rate-low"]


def fired_geocoding_notices(receiver: Receiver) -> list[tuple[str, int, str]]:
    return [n for n in receiver.notices() if n[0] == "fired" and n[2] == "geocoding-rate-low"]


# --- (a) the embedded default: one process, SQLite, no Redis -------------------------------------------


def _embedded_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")
        and not k.startswith(("MONITORING_", "WEBSOCKET_", "API_THROTTLE_"))
    }
    return {**base, "DEBUG": "1", "SQLITE_PATH": str(tmp_path / "db.sqlite3"), **extra}


def _manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(  # noqa: S603 (our own manage.py)
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


LAUNCHERS = {
    "serve": lambda port: (
        [sys.executable, "-m", "conflict_monitor.serve", "-b", "127.0.0.1", "-p", str(port)]
        + ["conflict_monitor.asgi:application"]
    ),
    "runserver": lambda port: [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
}


@pytest.mark.parametrize("launcher", ["serve", "runserver"])
def test_embedded_default_evaluates_and_pages_with_no_dashboard_open(tmp_path, receiver, launcher):
    env = _embedded_env(
        tmp_path, MONITORING_WEBHOOK_URL=receiver.url, WEBSOCKET_BROADCAST_INTERVAL="1", **NO_GROUP_WAIT
    )
    _manage(env, "migrate", "--noinput")
    key = _manage(env, "create_ingest_token", "scraper-gdelt").strip()
    port = free_port()
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(LAUNCHERS[launcher](port), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        eventually(
            lambda: process.poll() is None and call(port, f"{API}/health")[0],
            lambda status: status == 200,
            timeout=60,
            what=f"server healthy\n{log_path.read_text(errors='replace')}",
        )
        report_geocoding_collapse(port, key)
        started = time.monotonic()
        alerts = eventually(
            lambda: firing_geocoding_alerts(port), bool, timeout=10, what="a firing alert without any WebSocket"
        )
        assert time.monotonic() - started < 10
        assert {alert["severity"] for alert in alerts} == {"critical"}
        notices = eventually(
            lambda: fired_geocoding_notices(receiver), bool, timeout=10, what="a page at the local webhook"
        )
        assert {alert_id for _, alert_id, _ in notices} <= {alert["id"] for alert in alerts}
    finally:
        process.terminate()
        process.wait(timeout=15)
    assert "embedded broadcaster started with the server" in log_path.read_text(errors="replace")


# --- (b) with Redis: servers never evaluate; one of two broadcasters does --------------------------------


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_with_redis_an_alert_fires_and_pages_once_not_once_per_process(tmp_path, receiver):
    from monitoring.models import Alert, NotificationDelivery
    from monitoring.services.tokens import create_ingest_token

    _, key = create_ingest_token(name="scraper-gdelt")
    with running_cluster(
        logs=tmp_path,
        servers=("a", "b"),
        broadcasters=2,
        WEBSOCKET_BROADCAST_INTERVAL="1",
        # Every process has the URL: were a server or the standby to evaluate, it would page too.
        MONITORING_WEBHOOK_URL=receiver.url,
        **NO_GROUP_WAIT,
    ) as cluster:
        report_geocoding_collapse(cluster.port("a"), key)
        eventually(
            lambda: firing_geocoding_alerts(cluster.port("b")), bool, timeout=15, what="a firing alert, no WebSocket"
        )
        eventually(lambda: fired_geocoding_notices(receiver), bool, timeout=15, what="a page")
        time.sleep(4)  # several more ticks of both broadcasters: nothing fires or pages twice
        notices = fired_geocoding_notices(receiver)
        # The overall alert is inhibited by gdelt's own (docs/alerts.md#inhibition): only gdelt's pages.
        rows = list(
            Alert.objects.filter(rule_name="geocoding-rate-low", inhibited=False).values_list("id", "fingerprint")
        )
        deliveries = list(
            NotificationDelivery.objects.filter(alert__rule_name="geocoding-rate-low").values_list("alert_id", "event")
        )
        logs = {name: cluster.log_tail(name, 400) for name in ("a", "b")}
    fingerprints = Counter(fingerprint for _, fingerprint in rows)
    assert rows and max(fingerprints.values()) == 1, rows
    assert sorted(deliveries) == sorted((alert_id, "fired") for alert_id, _ in rows)
    assert Counter(alert_id for _, alert_id, _ in notices) == Counter(alert_id for alert_id, _ in rows)
    for name, text in logs.items():
        assert "broadcaster active" not in text, f"server {name} ran a broadcaster"


# --- item 3: the server has no webhook URL, the broadcaster has it --------------------------------------


def _login(port: int, username: str, password: str) -> tuple[urllib.request.OpenerDirector, Callable[[], str]]:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    def csrf() -> str:
        return next(cookie.value for cookie in jar if cookie.name == "csrftoken")

    opener.open(f"http://127.0.0.1:{port}/admin/login/", timeout=20).read()
    form = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": csrf(), "username": username, "password": password, "next": "/admin/"}
    ).encode()
    with opener.open(f"http://127.0.0.1:{port}/admin/login/", data=form, timeout=20) as response:
        assert response.url.endswith("/admin/"), "login failed"
    return opener, csrf


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_an_alert_resolved_on_a_server_without_a_webhook_url_still_gets_its_resolution_notice(tmp_path, receiver):
    from monitoring.services.tokens import create_ingest_token

    _, key = create_ingest_token(name="scraper-gdelt")
    with running_cluster(
        logs=tmp_path,
        servers=("a",),
        broadcasters=0,
        WEBSOCKET_BROADCAST_INTERVAL="1",
        # Plain http in the test: cookies without the Secure flag, so the client sends them back.
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
        **NO_GROUP_WAIT,
    ) as cluster:
        assert "MONITORING_WEBHOOK_URL" not in cluster.env
        # Created by the servers' own settings (the suite's hash a server would not accept).
        _manage(
            {**cluster.env, "DJANGO_SUPERUSER_PASSWORD": "correct-horse-battery"},
            "createsuperuser",
            "--noinput",
            "--username",
            "oncall",
            "--email",
            "oncall@example.org",
        )
        cluster.start_broadcaster(MONITORING_WEBHOOK_URL=receiver.url)
        port = cluster.port("a")
        report_geocoding_collapse(port, key)
        (_, alert_id, _), *_ = eventually(
            lambda: fired_geocoding_notices(receiver), bool, timeout=20, what="a page from the broadcaster"
        )
        opener, csrf = _login(port, "oncall", "correct-horse-battery")
        status, body = call(
            port,
            f"{API}/alerts/{alert_id}/resolve",
            body={"comment": "geocoder restarted"},
            headers={"X-CSRFToken": csrf()},
            opener=opener,
        )
        assert (status, body["state"], body["changed"]) == (200, "resolved", True), body
        status, body = call(
            port, f"{API}/alerts/{alert_id}/resolve", body={}, headers={"X-CSRFToken": csrf()}, opener=opener
        )
        assert (status, body["changed"]) == (200, False)  # resolving twice sends nothing more
        eventually(
            lambda: [n for n in receiver.notices() if n[:2] == ("resolved", alert_id)],
            bool,
            timeout=10,
            what="the resolution notice",
        )
        time.sleep(3)  # more delivery rounds: nothing is sent twice
        events = Counter(event for event, notice_id, _ in receiver.notices() if notice_id == alert_id)
    assert events == {"fired": 1, "resolved": 1}
