"""Views of monitoring/api/views.py: the liveness and readiness probes here; the status, ticket, ingest and
run endpoints each have their own file (test_status.py, test_ws_ticket.py, test_metrics_ingest.py,
test_runs.py)."""

import pytest

pytestmark = pytest.mark.django_db


def test_health_answers_while_the_process_lives(api_client):
    response = api_client.get("/api/v1/monitoring/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.redis
@pytest.mark.postgres
def test_ready_when_database_and_channel_layer_answer(api_client):
    response = api_client.get("/api/v1/monitoring/ready")
    assert response.status_code == 200, response.json()
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "channel_layer": "ok"}}


def test_not_ready_names_the_channel_layer_when_redis_is_unreachable(api_client, settings):
    # A port nobody listens on: the real client fails to connect.
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": "redis://127.0.0.1:1/0", "socket_timeout": 10, "socket_connect_timeout": 1}]
            },
        }
    }
    response = api_client.get("/api/v1/monitoring/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["checks"] == {"database": "ok", "channel_layer": "failed"}
    assert "channel_layer" in body["errors"]
