"""The page's server side: one thin view that renders the shell and its configuration."""

from __future__ import annotations

import json
import re

import pytest

pytestmark = pytest.mark.django_db


def config_of(response) -> dict:
    match = re.search(r'<script id="dashboard-config" type="application/json">(.*?)</script>', response.text, re.S)
    assert match, "the page carries its configuration as a JSON script tag"
    return json.loads(match.group(1))


def test_the_page_carries_its_configuration_and_sets_the_csrf_cookie(client, settings):
    settings.WEBSOCKET_BROADCAST_INTERVAL = 5.0
    settings.DASHBOARD_POLL_INTERVAL = 30.0
    settings.DASHBOARD_WS_BASE_URL = ""
    response = client.get("/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert "csrftoken" in response.cookies
    config = config_of(response)
    assert config["wsBaseUrl"] == ""  # derived in the browser: ws: on http, wss: on https
    assert config["wsPath"] == "/ws/monitoring/pipeline-status"
    assert config["statusUrl"] == "/api/v1/monitoring/pipeline-status"
    assert config["trendsUrl"] == "/api/v1/monitoring/trends"
    assert (config["heartbeatTimeout"], config["pollInterval"]) == (10.0, 30.0)
    assert config["user"] == {"authenticated": False, "username": ""}
    assert config["loginUrl"] == "/admin/login/?next=/"


def test_a_configured_feed_host_and_a_logged_in_user_reach_the_page(client, settings, django_user_model):
    settings.DASHBOARD_WS_BASE_URL = "wss://feed.example.org"
    client.force_login(django_user_model.objects.create_user("analyst"))
    config = config_of(client.get("/"))
    assert config["wsBaseUrl"] == "wss://feed.example.org"
    assert config["user"] == {"authenticated": True, "username": "analyst"}


def test_only_get_and_head_are_served(client):
    assert client.head("/").status_code == 200
    assert client.post("/").status_code == 405


def test_the_app_server_serves_the_page_assets_itself(client):
    """No proxy or front-end server is needed: the script the page loads comes from Django."""
    page = client.get("/").text
    script = re.search(r'<script type="module" src="([^"]+)"', page).group(1)
    response = client.get(script)
    assert response.status_code == 200
    assert "javascript" in response["Content-Type"]
    assert b"import" in b"".join(response.streaming_content)
