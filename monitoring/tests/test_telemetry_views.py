"""GET /metrics: Prometheus text for a scraper with the token, or anyone when reads are public."""

import hmac

import pytest

pytestmark = pytest.mark.django_db
URL = "/metrics"


def test_public_read_serves_the_prometheus_text_format(client, settings):
    settings.MONITORING_PUBLIC_READ = True
    settings.MONITORING_METRICS_TOKEN = ""
    response = client.get(URL)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    text = response.content.decode()
    assert "# TYPE conflict_monitor_ingested_rows_total counter" in text
    assert "# TYPE conflict_monitor_alerts gauge" in text


def test_without_public_read_or_token_the_metrics_are_refused_with_json(client, settings):
    settings.MONITORING_PUBLIC_READ = False
    settings.MONITORING_METRICS_TOKEN = ""
    response = client.get(URL)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("header", "status"), [("Bearer s3cret-token", 200), ("Bearer wrong", 401), ("", 401), ("Token s3cret-token", 401)]
)
def test_a_configured_token_is_required_even_when_reads_are_public(client, settings, header, status):
    settings.MONITORING_PUBLIC_READ = True
    settings.MONITORING_METRICS_TOKEN = "s3cret-token"
    headers = {"Authorization": header} if header else {}
    assert client.get(URL, headers=headers).status_code == status


def test_only_reads_are_allowed(client, settings):
    settings.MONITORING_PUBLIC_READ = True
    assert client.post(URL).status_code == 405


def test_the_scrape_token_is_compared_in_constant_time(client, settings, monkeypatch):
    calls, compare = [], hmac.compare_digest

    def recording(a, b):
        calls.append((a, b))
        return compare(a, b)

    monkeypatch.setattr("monitoring.telemetry_views.hmac.compare_digest", recording)
    settings.MONITORING_METRICS_TOKEN = "s3cret-token"
    assert client.get(URL, headers={"Authorization": "Bearer s3cret-tokeX"}).status_code == 401
    assert calls == [(b"s3cret-tokeX", b"s3cret-token")]
