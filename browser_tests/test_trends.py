"""The records chart in real Chromium: a colour of its own for each of the largest sources, the rest as one
"other" band, stacks that add up to the total, and colours that stay with a source when the ranking moves."""

from __future__ import annotations

import json
import urllib.request

import pytest
from playwright.sync_api import Page, expect

from browser_tests.test_dashboard import wait_for_reports, wait_live

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

SOURCES = [f"source-{i:02d}" for i in range(13)]  # more sources than the palette has colours


def volume_datasets(page: Page) -> list[dict]:
    return page.evaluate(
        """() => Chart.getChart(document.getElementById("volume-chart")).data.datasets.map(
            (d) => ({ label: d.label, colour: d.backgroundColor, data: d.data }))"""
    )


def wait_for_legend(page: Page, predicate: str) -> list[dict]:
    page.wait_for_function(
        f"""() => {{
            const chart = globalThis.Chart && Chart.getChart(document.getElementById("volume-chart"));
            const labels = chart ? chart.data.datasets.map((d) => d.label) : [];
            return ({predicate})(labels);
        }}""",
        timeout=10_000,
    )
    return volume_datasets(page)


def overall_records(servers) -> list[int]:
    url = f"{servers.base}/api/v1/monitoring/trends?metric=volume&bucket=hour&window_hours=24"
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (http://127.0.0.1 only)
        return [p["records"] for p in json.load(response)["metrics"]["volume"]["points"]]


def test_thirteen_sources_get_seven_distinct_colours_and_one_other_band_that_adds_up(servers, ingest_key, open_page):
    for rank, source in enumerate(SOURCES):
        attempts = 1000 - 50 * rank
        servers.ingest(ingest_key, source=source, geocoding_attempts=attempts, geocoding_successes=attempts - 100)
    page = open_page()
    wait_live(page)
    datasets = wait_for_legend(page, "(labels) => labels.some((l) => l.startsWith('other'))")

    labels = [d["label"] for d in datasets]
    assert labels[:7] == SOURCES[:7]  # the largest first
    assert labels[7] == "other (6 sources)"
    colours = [d["colour"] for d in datasets]
    assert len(set(colours)) == len(colours) == 8
    # Every bucket of the stack adds up to the records over all sources.
    totals = overall_records(servers)
    stacked = [sum(d["data"][b] or 0 for d in datasets) for b in range(len(totals))]
    assert stacked == totals and sum(totals) == sum(1000 - 50 * rank for rank in range(13))
    expect(page.get_by_test_id("trends-summary")).to_contain_text("the 7 largest sources, the other 6 together")


def test_a_source_keeps_its_colour_when_another_one_overtakes_a_third(servers, ingest_key, open_page):
    for rank, source in enumerate(SOURCES):
        servers.ingest(ingest_key, source=source, geocoding_attempts=1000 - 50 * rank, geocoding_successes=100)
    page = open_page()
    wait_live(page)
    before = {d["label"]: d["colour"] for d in wait_for_legend(page, "(labels) => labels.includes('source-06')")}

    # The smallest source becomes the largest: source-06 drops into "other" and the newcomer takes its colour.
    servers.ingest(ingest_key, source="source-12", geocoding_attempts=5000, geocoding_successes=100)
    wait_for_reports(page, len(SOURCES) + 1)  # the page has the status that ranks source-12 first
    page.get_by_role("button", name="24 h").click()  # a ranking change redraws at the next refresh
    after = {d["label"]: d["colour"] for d in wait_for_legend(page, "(labels) => labels.includes('source-12')")}

    assert "source-06" not in after
    assert after["source-12"] == before["source-06"]
    for source in SOURCES[:6]:
        assert after[source] == before[source]
