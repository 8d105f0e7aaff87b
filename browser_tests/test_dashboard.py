"""The dashboard in real Chromium: live updates, outage and recovery, alert actions, phone layout."""

from __future__ import annotations

import os
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from browser_tests.conftest import BROADCAST_INTERVAL, POLL_INTERVAL, ROOT, artifact

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]
HEARTBEAT = 2 * BROADCAST_INTERVAL


def label(page: Page):
    return page.get_by_test_id("connection-label")


def wait_live(page: Page, timeout: float = 15) -> None:
    expect(label(page)).to_have_text("Live", timeout=timeout * 1000)


def wait_for_reports(page: Page, reports: int, timeout: float = 10) -> None:
    expect(page.get_by_test_id("reports")).to_have_text(f"{reports:,}", timeout=timeout * 1000)


def record_changes(page: Page, test_id: str) -> None:
    """Timestamp every change of an element's text in the page itself: expect() polls, so it would add its own
    polling delay to any latency measured from the test."""
    page.evaluate(
        """(id) => {
            const element = document.querySelector(`[data-testid="${id}"]`);
            const log = (window.__changes ??= {})[id] = [];
            new MutationObserver(() => log.push([Date.now(), element.textContent])).observe(
                element, { childList: true, characterData: true, subtree: true });
        }""",
        test_id,
    )


def first_change(page: Page, test_id: str, predicate: str, timeout: float) -> float:
    """Epoch seconds of the first recorded text of ``test_id`` for which the JS ``predicate(text)`` holds."""
    handle = page.wait_for_function(
        f"""(id) => (window.__changes[id] ?? []).find(([, text]) => ({predicate})(text))?.[0] ?? null""",
        arg=test_id,
        timeout=timeout * 1000,
    )
    return handle.json_value() / 1000


def test_page_loads_live_and_shows_the_numbers_of_the_rest_status(servers, ingest_key, open_page):
    servers.ingest(
        ingest_key,
        source="acled",
        geocoding_attempts=120,
        geocoding_successes=108,
        validation_attempts=120,
        validation_passes=115,
    )
    servers.ingest(
        ingest_key,
        source="gdelt",
        geocoding_attempts=200,
        geocoding_successes=151,
        validation_attempts=200,
        validation_passes=181,
    )
    page = open_page()
    wait_live(page)
    wait_for_reports(page, 2)

    document = servers.status()
    quality = document["data_quality"]
    overall = page.get_by_test_id("overall-status")
    expect(overall).to_have_attribute("data-status", document["overall_status"])
    expect(overall).to_have_text(document["overall_status"].capitalize())
    expect(page.get_by_test_id("geocoding-rate")).to_have_text(f"{quality['geocoding_success_rate']:.1f}%")
    expect(page.get_by_test_id("validation-rate")).to_have_text(f"{quality['validation_pass_rate']:.1f}%")
    assert quality["geocoding_success_rate"] == 80.9 and quality["validation_pass_rate"] == 92.5
    rows = page.get_by_test_id("quality-table").locator("tbody tr")
    expect(rows).to_have_count(2)
    # Two reports are no history: once the server has judged (in the background, a moment after it
    # started), the anomaly detector is learning both sources, and says so.
    deadline = time.monotonic() + 10
    while (detection := servers.status()["data_quality"]["by_source"][0]["anomaly_detection"])["state"] == "starting":
        assert time.monotonic() < deadline, "the anomaly detectors were never judged"
        time.sleep(0.2)
    assert detection == {"state": "learning", "hours_seen": 0, "hours_needed": 24}
    expect(rows.first).to_contain_text("learning (0 of 24 h)", timeout=10_000)
    expect(page.get_by_test_id("updated")).to_contain_text("via live feed")
    page.screenshot(path=artifact("live.png"), full_page=True)


def test_an_ingest_changes_the_page_within_a_second(servers, ingest_key, open_page):
    page = open_page()
    wait_live(page)
    wait_for_reports(page, 0)
    record_changes(page, "reports")
    servers.ingest(ingest_key, source="acled")
    committed = time.time()
    changed = first_change(page, "reports", "(text) => text === '1'", timeout=5)
    assert changed - committed <= 1.0, f"the page changed {changed - committed:.2f} s after the ingest"


def test_stale_data_is_never_shown_as_healthy(servers, ingest_key, open_page):
    three_hours_ago = (timezone.now() - timedelta(hours=3)).isoformat()
    servers.ingest(
        ingest_key, timestamp=three_hours_ago, geocoding_successes=100, validation_attempts=100, validation_passes=100
    )
    page = open_page()
    wait_live(page)
    expect(page.get_by_test_id("overall-status")).to_have_attribute("data-status", "stale")
    expect(page.get_by_test_id("overall-status")).to_have_text("Stale")
    expect(page.locator("#overall-reason")).to_contain_text("reports may have stopped")


def test_a_status_the_server_flags_stale_is_shown_as_unknown_until_a_fresh_one(servers, ingest_key, open_page):
    """The broadcaster hangs: the socket stays live, but the page must not keep claiming the last verdict."""
    servers.ingest(ingest_key, source="acled", validation_attempts=100, validation_passes=100)
    page = open_page()
    wait_live(page)
    overall = page.get_by_test_id("overall-status")
    expect(overall).not_to_have_attribute("data-status", "unknown")
    servers.pause_broadcaster()
    try:
        expect(overall).to_have_attribute("data-status", "unknown", timeout=5000)
        expect(page.locator("#overall-reason")).to_contain_text("status updates have stopped")
        expect(page.locator("#overall-reason")).to_contain_text("Last known:")
        expect(label(page)).to_have_text("Live")  # the notices keep the socket alive: no reconnect churn
        page.wait_for_timeout(HEARTBEAT * 1000 + 500)
        expect(label(page)).to_have_text("Live")
        page.screenshot(path=artifact("status-stale.png"))
    finally:
        servers.resume_broadcaster()
    expect(overall).not_to_have_attribute("data-status", "unknown", timeout=5000)


def test_feed_outage_polls_the_api_and_recovers_when_the_feed_returns(servers, ingest_key, open_page, console):
    servers.ingest(ingest_key, source="acled")
    page = open_page()
    wait_live(page)
    wait_for_reports(page, 1)
    status_requests: list[float] = []
    page.on("request", lambda r: status_requests.append(time.monotonic()) if "/pipeline-status" in r.url else None)
    # Chromium itself logs every refused WebSocket handshake; those are the outage, not a page error.
    console.allow(rf"WebSocket connection to 'ws://127\.0\.0\.1:{servers.feed_port}/.*' failed")

    record_changes(page, "connection-label")
    frozen = time.time()
    servers.freeze_feed()  # no close, no FIN: only the heartbeat can tell
    left_live = first_change(page, "connection-label", "(text) => text !== 'Live'", timeout=HEARTBEAT + 1) - frozen
    assert left_live <= HEARTBEAT + 0.2, f"still Live {left_live:.2f} s after the feed went silent"
    expect(label(page)).to_have_text(re.compile(r"Reconnecting \(attempt \d+\)"))
    page.screenshot(path=artifact("reconnecting.png"))
    servers.kill_feed()

    expect(label(page)).to_have_text("Polling", timeout=15_000)
    page.screenshot(path=artifact("polling.png"))
    servers.ingest(ingest_key, source="acled")
    wait_for_reports(page, 2, timeout=POLL_INTERVAL + 2)
    expect(page.get_by_test_id("updated")).to_contain_text("via REST")
    expect(page.get_by_test_id("overall-status")).not_to_have_attribute("data-status", "unknown")

    servers.start_feed()
    wait_live(page, timeout=35)  # the next retry is at most one capped backoff step (30 s) away
    polls_when_live = len(status_requests)
    servers.ingest(ingest_key, source="gdelt")
    wait_for_reports(page, 3, timeout=3)
    expect(page.get_by_test_id("updated")).to_contain_text("via live feed")
    page.wait_for_timeout(POLL_INTERVAL * 1500)
    assert len(status_requests) == polls_when_live, "polling went on after the feed came back"


def test_an_api_outage_is_announced_and_the_notice_clears_with_fresh_data(servers, ingest_key, open_page, console):
    """A 503 from the status API (its database down) must not pass silently: the page says its figures are old."""
    servers.ingest(ingest_key, source="acled")
    page = open_page()
    wait_live(page)
    console.allow(r"status of 503")
    page.route(
        "**/pipeline-status*",
        lambda route: route.fulfill(
            status=503, content_type="application/json", body='{"error": "database_unavailable", "detail": "x"}'
        ),
    )
    banner = page.locator("#banner")
    page.get_by_role("button", name="Refresh").click()
    expect(banner).to_contain_text("cannot reach its database")
    page.screenshot(path=artifact("database-unavailable.png"))
    page.unroute("**/pipeline-status*")
    page.get_by_role("button", name="Refresh").click()
    expect(banner).to_be_hidden()


def test_acknowledging_an_alert_changes_the_database_and_every_open_page(servers, open_page):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    from monitoring.models import Alert, AlertRule

    # The test settings hash with MD5 for speed; the servers run the production hashers, which refuse MD5.
    hasher = PBKDF2PasswordHasher()
    password = "browser-test-password"  # noqa: S105
    user = get_user_model().objects.create_superuser("operator", "operator@example.org")
    user.password = hasher.encode(password, hasher.salt())
    user.save(update_fields=["password"])
    operator = open_page("/admin/login/?next=/", favicon=True)
    operator.fill("#id_username", "operator")
    operator.fill("#id_password", password)
    operator.click("input[type=submit]")
    operator.wait_for_url(f"{servers.base}/")
    expect(operator.get_by_test_id("username")).to_have_text("operator")
    viewer = open_page()
    wait_live(operator)
    wait_live(viewer)

    # A rule that never matches and never auto-resolves keeps the broadcaster's evaluation off this alert.
    rule = AlertRule.objects.create(
        name="browser-manual",
        kind="threshold",
        metric="geocoding_success_rate",
        scope="overall",
        critical=70,
        min_sample=2_000_000_000,
        auto_resolve=False,
    )
    alert = Alert.objects.create(
        fingerprint="browser-manual:acled",
        rule=rule,
        rule_name=rule.name,
        source="acled",
        severity="critical",
        summary="Geocoding success 18.2% on acled (critical below 70%)",
        evidence={"value": 18.2},
    )
    on_operator = operator.locator(f'[data-alert-id="{alert.pk}"]')
    on_viewer = viewer.locator(f'[data-alert-id="{alert.pk}"]')
    expect(on_operator.get_by_test_id("alert-state")).to_have_text("Firing", timeout=5000)
    expect(on_viewer.get_by_test_id("alert-state")).to_have_text("Firing", timeout=5000)
    # It appeared while the pages were open: a new critical alert, announced (no notification permission: a toast).
    expect(viewer.get_by_test_id("toast").filter(has_text=alert.summary)).to_contain_text("Critical alert: acled")
    expect(on_viewer.get_by_test_id("alert-actions")).to_have_count(0)
    expect(viewer.get_by_test_id("login-link")).to_be_visible()

    on_operator.locator('input[name="comment"]').fill("Geocoder restarted, watching")
    on_operator.get_by_role("button", name="Acknowledge").click()
    expect(on_operator.get_by_test_id("alert-state")).to_have_text("Acknowledged")
    expect(on_viewer.get_by_test_id("alert-state")).to_have_text("Acknowledged", timeout=3000)
    expect(on_viewer).to_contain_text("Acknowledged by operator")
    expect(on_viewer).to_contain_text("Geocoder restarted, watching")

    alert.refresh_from_db()
    assert alert.state == "acknowledged"
    assert alert.acknowledged_by.username == "operator"
    assert alert.acknowledge_comment == "Geocoder restarted, watching"
    operator.screenshot(path=artifact("alert-acknowledged.png"), full_page=True)

    on_operator.get_by_role("button", name="Resolve").click()
    expect(on_viewer).to_have_count(0, timeout=3000)
    alert.refresh_from_db()
    assert alert.state == "resolved"


def test_phone_width_has_no_horizontal_scroll(servers, ingest_key, open_page):
    servers.ingest(ingest_key, source="acled")
    page = open_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, device_scale_factor=2)
    wait_live(page)
    wait_for_reports(page, 1)
    overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than a 390px phone"
    page.screenshot(path=artifact("phone-390.png"), full_page=True)


def simulate(scenario: str) -> None:
    """48 h of ``make demo`` traffic through the ingest services, off the test thread: the services hint the
    broadcaster through async_to_sync, which refuses to run beside Playwright's event loop. Alerts are left to
    the running broadcaster (``manage.py simulate_pipeline`` would evaluate them too, racing it)."""
    from django.db import connections

    from monitoring.simulation import simulate as write_traffic

    def run() -> None:
        try:
            write_traffic(scenario=scenario, now=timezone.now(), hours=48, step_minutes=60, seed=20261123)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(run).result()


def test_simulated_outage_renders_every_panel(servers, open_page):
    simulate("geocoding-outage")
    deadline = time.monotonic() + 10
    while not servers.status()["alerts"]:  # open the page once the alerts fired: no toasts in the picture
        assert time.monotonic() < deadline, "the broadcaster did not evaluate the alerts"
        time.sleep(0.2)
    page = open_page()
    wait_live(page)
    expect(page.get_by_test_id("scraping-table").locator("tbody tr")).to_have_count(5)
    # How far the 6-hour outage pulls gdelt's 24-hour rate depends on the time of day (traffic is
    # diurnal): below the critical threshold by day, only below the warning one around midnight UTC.
    gdelt = next(row for row in servers.status()["data_quality"]["by_source"] if row["source"] == "gdelt")
    assert gdelt["status"] in ("critical", "degraded"), gdelt
    expect(page.get_by_test_id("quality-table").locator('tr[data-source="gdelt"]')).to_contain_text(
        gdelt["status"].capitalize()
    )
    expect(page.get_by_test_id("alerts-list").get_by_test_id("alert").first).to_be_visible(timeout=5000)
    expect(page.get_by_test_id("trends-summary")).to_contain_text("Last 24 h", timeout=5000)
    page.get_by_role("button", name="30 d").click()
    expect(page.get_by_test_id("trends-summary")).to_contain_text("Last 30 days")
    page.get_by_role("button", name="24 h").click()
    expect(page.get_by_test_id("trends-summary")).to_contain_text("Last 24 h")
    page.screenshot(path=artifact("dashboard-demo.png"), full_page=True)
    if os.environ.get("UPDATE_DOCS_SCREENSHOT"):
        shutil.copyfile(artifact("dashboard-demo.png"), ROOT / "docs" / "dashboard.png")
