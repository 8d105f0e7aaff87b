"""No secret reaches the logs: a real server logging at DEBUG, driven through login, a WebSocket ticket
(used, then replayed), a private feed (by ticket, and by a read key in the handshake's header), a ticket
got with the read key, and ingest (with the right key and a wrong one), writes neither key, the tickets,
the password nor the session id anywhere in its output."""

from __future__ import annotations

import http.cookiejar
import json
import re
import urllib.error
import urllib.parse
import urllib.request

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from monitoring.events import CLOSE_FORBIDDEN
from tests.integration.cluster import running_cluster

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]
PASSWORD = "correct-horse-battery-staple-7"  # noqa: S105 (a throwaway user of the test database)


def login(port: int, opener: urllib.request.OpenerDirector, jar: http.cookiejar.CookieJar) -> str:
    """Log in through the admin form; returns the CSRF token for later POSTs."""
    base = f"http://127.0.0.1:{port}"
    page = opener.open(f"{base}/admin/login/", timeout=10).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]
    form = urllib.parse.urlencode(
        {"username": "operator", "password": PASSWORD, "csrfmiddlewaretoken": token, "next": "/admin/"}
    ).encode()
    request = urllib.request.Request(f"{base}/admin/login/", data=form, headers={"Referer": f"{base}/admin/login/"})
    opener.open(request, timeout=10).read()
    assert any(cookie.name == "sessionid" for cookie in jar), "login failed"
    return next(cookie.value for cookie in jar if cookie.name == "csrftoken")


def test_no_key_ticket_password_or_session_in_the_server_output(tmp_path):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    from monitoring.services.tokens import create_ingest_token, create_read_token

    # Hashed as the server hashes (the test settings' fast MD5 hasher is unknown to it).
    hashed = PBKDF2PasswordHasher().encode(PASSWORD, PBKDF2PasswordHasher().salt())
    get_user_model().objects.create(username="operator", password=hashed, is_staff=True, is_superuser=True)
    _, key = create_ingest_token(name="log-probe")
    _, read_key = create_read_token(name="log-probe-reader")
    with running_cluster(
        logs=tmp_path,
        servers=("a",),
        broadcasters=1,
        LOG_LEVEL="DEBUG",
        MONITORING_PUBLIC_READ="0",
        # Plain http in the test: cookies marked Secure would never come back.
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
    ) as cluster:
        port = cluster.port("a")
        base = f"http://127.0.0.1:{port}"
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        csrf = login(port, opener, jar)
        session = next(cookie.value for cookie in jar if cookie.name == "sessionid")

        request = urllib.request.Request(
            f"{base}/api/v1/monitoring/ws-ticket",
            data=b"{}",
            headers={"X-CSRFToken": csrf, "Content-Type": "application/json", "Referer": f"{base}/"},
        )
        ticket = json.load(opener.open(request, timeout=10))["ticket"]
        feed = f"ws://127.0.0.1:{port}/ws/monitoring/pipeline-status?ticket={ticket}"
        with connect(feed, open_timeout=10) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "pipeline_status_update"
        with pytest.raises(ConnectionClosed) as replayed, connect(feed, open_timeout=10) as ws:
            ws.recv(timeout=10)  # a used ticket: refused
        assert replayed.value.rcvd.code == CLOSE_FORBIDDEN
        bearer = {"Authorization": f"Bearer {read_key}"}
        with connect(feed.split("?")[0], additional_headers=bearer, open_timeout=10) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "pipeline_status_update"
        request = urllib.request.Request(f"{base}/api/v1/monitoring/ws-ticket", data=b"", headers=bearer)
        read_ticket = json.load(urllib.request.urlopen(request, timeout=10))["ticket"]  # noqa: S310 (127.0.0.1)

        for candidate in (key, key[::-1]):  # the right key, and a wrong one
            request = urllib.request.Request(
                f"{base}/api/v1/monitoring/metrics",
                data=json.dumps({"source": "acled", "geocoding_attempts": 5, "geocoding_successes": 4}).encode(),
                headers={"Authorization": f"Token {candidate}", "Content-Type": "application/json"},
            )
            try:
                status = opener.open(request, timeout=10).status
            except urllib.error.HTTPError as error:
                status = error.code
            assert status == (201 if candidate == key else 401)
        output = "\n".join(path.read_text(errors="replace") for path in tmp_path.glob("*.log"))

    assert "DEBUG" in output  # the probe really logged at DEBUG
    for name, secret in {
        "ingest key": key,
        "wrong key": key[::-1],
        "read key": read_key,
        "ticket": ticket,
        "read key's ticket": read_ticket,
        "password": PASSWORD,
        "session id": session,
        "CSRF token": csrf,
    }.items():
        assert secret not in output, f"the {name} appears in the server output"
