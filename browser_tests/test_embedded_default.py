"""`make run`'s embedded default in Chromium: SQLite, the in-memory channel layer and the broadcaster inside
the one server process, with no DATABASE_URL or REDIS_URL. What a first-time user gets must be live too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import expect

from browser_tests.conftest import artifact
from tests.integration.cluster import ROOT, free_port


@dataclass
class Embedded:
    base: str
    env: dict[str, str]

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def ingest(self, key: str, body: dict) -> None:
        request = urllib.request.Request(  # noqa: S310 (http://127.0.0.1 only)
            f"{self.base}/api/v1/monitoring/metrics",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Token {key}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            assert response.status == 201


@pytest.fixture(scope="module")
def embedded(tmp_path_factory) -> Iterator[Embedded]:
    folder = tmp_path_factory.mktemp("embedded")
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DJANGO_ALLOW_ASYNC_UNSAFE")
        and not key.startswith(("MONITORING_", "WEBSOCKET_", "DASHBOARD_"))
    }
    env.update(
        DEBUG="1",
        SQLITE_PATH=str(folder / "db.sqlite3"),
        DJANGO_SETTINGS_MODULE="conflict_monitor.settings",
        WEBSOCKET_BROADCAST_INTERVAL="1",
    )
    port = free_port()
    server = Embedded(base=f"http://127.0.0.1:{port}", env=env)
    server.manage("migrate", "--noinput")
    log = open(folder / "server.log", "wb")  # noqa: SIM115 (lives as long as the process)
    # As `make run` serves: the production launcher, on the embedded default.
    process = subprocess.Popen(
        [sys.executable, "-m", "conflict_monitor.serve", "-b", "127.0.0.1", "-p", str(port)]
        + ["conflict_monitor.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (folder / "server.log").read_text()
            try:
                urllib.request.urlopen(f"{server.base}/api/v1/monitoring/health", timeout=2).close()  # noqa: S310
                break
            except OSError:
                assert time.monotonic() < deadline, (folder / "server.log").read_text()
                time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            # Seen once in CI, not reproduced since: the slow stop is reported, and the server killed
            # so the rest of the run goes on. What this module tests happened before.
            process.kill()
            process.wait()
            tail = (folder / "server.log").read_text(errors="replace")[-3000:]
            warnings.warn(f"the server took over 10 s to stop on SIGTERM; its log ends:\n{tail}", stacklevel=1)
        log.close()


def test_the_first_page_is_live_and_follows_an_ingest_without_redis(embedded, browser, console):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    console.watch(page)
    page.goto(embedded.base + "/")
    expect(page.get_by_test_id("connection-label")).to_have_text("Live", timeout=15_000)
    expect(page.get_by_test_id("overall-status")).to_have_attribute("data-status", "no_data")
    expect(page.locator("main")).to_contain_text("make demo")  # an empty install says how to get data
    page.screenshot(path=artifact("embedded-first-visit.png"), full_page=True)

    key = embedded.manage("create_ingest_token", "first-run").strip()
    embedded.ingest(key, {"source": "acled", "geocoding_attempts": 120, "geocoding_successes": 108})
    expect(page.get_by_test_id("reports")).to_have_text("1", timeout=2_000)
    expect(page.get_by_test_id("geocoding-rate")).to_have_text("90.0%")
    expect(page.get_by_test_id("updated")).to_contain_text("via live feed")
    context.close()
