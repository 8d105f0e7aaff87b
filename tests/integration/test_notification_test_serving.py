"""The real process: the launcher serves the API, an operator logs in (session + CSRF) and sends a test
notification; a local receiver gets the marked payload from the server process."""

from __future__ import annotations

import http.cookiejar
import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request

from monitoring.tests.webhook_receiver import Receiver
from tests.integration.cluster import ROOT
from tests.integration.test_launcher_serving import _serve, _wait_healthy


def _manage(env: dict[str, str], *args: str) -> None:
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env}, check=True, capture_output=True)


def _csrf(jar: http.cookiejar.CookieJar) -> str:
    return next(cookie.value for cookie in jar if cookie.name == "csrftoken")


def test_an_operator_sends_a_test_notification_through_the_served_api(tmp_path):
    with Receiver(status=200) as receiver:
        env = {
            "DEBUG": "1",
            "SQLITE_PATH": str(tmp_path / "db.sqlite3"),
            "MONITORING_WEBHOOK_URL": receiver.url,
            "DJANGO_SUPERUSER_PASSWORD": "test-only-pw-123",
        }
        _manage(env, "migrate", "--noinput")
        _manage(env, "createsuperuser", "--noinput", "--username", "operator", "--email", "op@example.org")
        process, port = _serve(tmp_path, **env)
        try:
            _wait_healthy(process, port, tmp_path / "server.log")
            base = f"http://127.0.0.1:{port}"
            jar = http.cookiejar.CookieJar()
            opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
            opener.open(f"{base}/admin/login/", timeout=10).read()
            form = urllib.parse.urlencode(
                {"username": "operator", "password": "test-only-pw-123", "csrfmiddlewaretoken": _csrf(jar), "next": "/"}
            ).encode()
            login = urllib.request.Request(
                f"{base}/admin/login/", data=form, headers={"Referer": f"{base}/admin/login/"}
            )
            opener.open(login, timeout=10).read()
            assert any(cookie.name == "sessionid" for cookie in jar), (tmp_path / "server.log").read_text()

            request = urllib.request.Request(
                f"{base}/api/v1/monitoring/notifications/test",
                data=b"",
                method="POST",
                headers={"X-CSRFToken": _csrf(jar), "Referer": f"{base}/", "Content-Type": "application/json"},
            )
            with opener.open(request, timeout=20) as response:
                body = json.loads(response.read())
            assert body["ok"] is True, body
            assert body["status_code"] == 200
            assert body["url_host"] == f"127.0.0.1:{receiver.port}"
            assert len(receiver.requests) == 1
            assert receiver.requests[0][1]["test"] is True
            assert "[TEST]" in receiver.requests[0][1]["text"]
        finally:
            process.terminate()
            process.wait(timeout=15)
