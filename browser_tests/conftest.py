"""Real Chromium against real servers: daphne A serves the page and the API, daphne B the live feed, one
broadcaster publishes, all on the test database and the local Redis (``tests/integration/cluster.py``, whose
processes are the bench library's ``bench.lib.processes.Service``)."""

from __future__ import annotations

import json
import os
import re
import signal
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, sync_playwright

from bench.lib.database import manage
from tests.integration.cluster import ROOT, Cluster, free_port, running_cluster

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts"
BROADCAST_INTERVAL = 1.0  # seconds; the page's heartbeat is twice this
POLL_INTERVAL = 2.0  # seconds between REST polls while the feed is down
DESKTOP = {"width": 1280, "height": 900}

# Playwright's sync API keeps an event loop running in the test thread, so Django takes every ORM call
# there for a call from async code. The calls are not: the test thread is the only user of its connection.
# The servers under test get the variable cleared (below) and keep Django's check.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"


@dataclass
class Servers:
    cluster: Cluster
    page_port: int
    feed_port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.page_port}"

    def freeze_feed(self) -> None:
        """B hangs (SIGSTOP): its sockets stay open and silent, as behind a dead proxy or a lost network."""
        self.cluster.servers["b"][0].send_signal(signal.SIGSTOP)

    def kill_feed(self) -> None:
        """B is gone (SIGKILL works on a frozen process too): connections to its port are refused."""
        self.cluster.stop_server("b", sig=signal.SIGKILL)

    def start_feed(self) -> None:
        self.cluster.start_server("b", port=self.feed_port)
        self.cluster.wait_ready()

    def pause_broadcaster(self) -> None:
        """The only broadcaster hangs (SIGSTOP): no status is published, every socket stays open."""
        self.cluster.broadcasters[0].send_signal(signal.SIGSTOP)

    def resume_broadcaster(self) -> None:
        self.cluster.broadcasters[0].send_signal(signal.SIGCONT)

    def status(self) -> dict:
        return self._call("/api/v1/monitoring/pipeline-status")

    def ingest(self, key: str, **fields) -> dict:
        body = {"source": "acled", "geocoding_attempts": 100, "geocoding_successes": 90, **fields}
        return self._call("/api/v1/monitoring/metrics", body=body, headers={"Authorization": f"Token {key}"})

    def _call(self, path: str, *, body: dict | None = None, headers: dict | None = None) -> dict:
        request = urllib.request.Request(  # noqa: S310 (http://127.0.0.1 only)
            self.base + path,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            assert response.status in (200, 201), response.status
            return json.load(response)


def collect_static(root: Path) -> None:
    """What the production image does at build time: the servers then serve the page's files as deployed."""
    env = {**os.environ, "STATIC_ROOT": str(root), "DJANGO_SETTINGS_MODULE": "conflict_monitor.settings"}
    manage("", "collectstatic", "--noinput", "--verbosity", "0", env=env)


@pytest.fixture(scope="session")
def servers(django_db_setup, tmp_path_factory) -> Iterator[Servers]:
    feed_port = free_port()  # known before A starts: A's pages point at it
    static_root = tmp_path_factory.mktemp("static")
    collect_static(static_root)
    with running_cluster(
        logs=tmp_path_factory.mktemp("browser-cluster"),
        servers=("a",),
        broadcasters=1,
        STATIC_ROOT=str(static_root),
        WEBSOCKET_BROADCAST_INTERVAL=str(BROADCAST_INTERVAL),
        DASHBOARD_POLL_INTERVAL=str(POLL_INTERVAL),
        DASHBOARD_WS_BASE_URL=f"ws://127.0.0.1:{feed_port}",
        # Plain http in tests: secure-only cookies would never reach the server.
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
        DJANGO_ALLOW_ASYNC_UNSAFE="",
    ) as cluster:
        cluster.start_server("b", port=feed_port)
        cluster.wait_ready()
        yield Servers(cluster=cluster, page_port=cluster.port("a"), feed_port=feed_port)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@dataclass
class ConsoleWatch:
    """Console errors and uncaught exceptions of every page a test opens; none may be left at the end."""

    errors: list[str] = field(default_factory=list)
    allowed: list[re.Pattern] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not any(p.search(message.text) for p in self.allowed):
            self.errors.append(f"console.error: {message.text} ({message.location.get('url')})")

    def allow(self, pattern: str) -> None:
        """A message the browser itself logs for a failure the test causes on purpose."""
        self.allowed.append(re.compile(pattern))


@pytest.fixture
def console() -> Iterator[ConsoleWatch]:
    watch = ConsoleWatch()
    yield watch
    assert watch.errors == [], "\n".join(watch.errors)


@pytest.fixture
def open_page(servers, browser, console) -> Iterator[Callable[..., Page]]:
    """Open the dashboard (or ``path``) in a fresh browser context (own cookies); contexts close after the test."""
    contexts: list[BrowserContext] = []

    def _open(path: str = "/", *, viewport: dict | None = None, favicon: bool = False, **options) -> Page:
        context = browser.new_context(viewport=viewport or DESKTOP, **options)
        contexts.append(context)
        if favicon:
            # Pages without an icon link (the admin's login page) make the browser fetch /favicon.ico, and
            # its 404 is logged as a console error; the dashboard itself declares an empty icon.
            context.route("**/favicon.ico", lambda route: route.fulfill(status=204))
        page = context.new_page()
        console.watch(page)
        page.goto(servers.base + path)
        return page

    yield _open
    for context in contexts:
        context.close()


@pytest.fixture
def ingest_key(transactional_db) -> str:
    from monitoring.services.tokens import create_ingest_token

    _, key = create_ingest_token(name="browser-tests")
    return key


def artifact(name: str) -> Path:
    return ARTIFACTS / name
