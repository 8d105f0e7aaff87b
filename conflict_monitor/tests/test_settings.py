"""Settings come from the environment; each case imports the settings in a fresh interpreter."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json
from conflict_monitor import settings as s
print(json.dumps({
    "db": s.DATABASES["default"], "layer": s.CHANNEL_LAYERS["default"], "debug": s.DEBUG,
    "hosts": s.ALLOWED_HOSTS, "public": s.MONITORING_PUBLIC_READ, "interval": s.WEBSOCKET_BROADCAST_INTERVAL,
    "thresholds": s.MONITORING_THRESHOLDS, "max_connections": s.WEBSOCKET_MAX_CONNECTIONS,
    "csrf_origins": s.CSRF_TRUSTED_ORIGINS, "static_from_apps": s.WHITENOISE_USE_FINDERS,
}, default=str))
"""
CONTROLLED = {
    "DEBUG",
    "SECRET_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "MONITORING_PUBLIC_READ",
    "WHITENOISE_USE_FINDERS",
}


def _settings(**env: str) -> subprocess.CompletedProcess:
    base = {
        k: v for k, v in os.environ.items() if k not in CONTROLLED and not k.startswith(("MONITORING_", "WEBSOCKET_"))
    }
    return subprocess.run(
        [sys.executable, "-c", PROBE], env={**base, **env}, cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def _load(**env: str) -> dict:
    result = _settings(**env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_production_refuses_to_serve_without_a_secret_key():
    env = {k: v for k, v in os.environ.items() if k not in CONTROLLED}
    env["DJANGO_SETTINGS_MODULE"] = "conflict_monitor.settings"
    served = subprocess.run(
        [sys.executable, "-c", "import conflict_monitor.asgi"], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert served.returncode != 0 and "SECRET_KEY setting must not be empty" in served.stderr
    checked = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert "security.W009" in checked.stderr
    assert _load()["debug"] is False  # offline commands may still load the settings


def _production_example() -> dict[str, str]:
    """The environment docs/configuration.md gives for production, with a real key in the placeholder."""
    text = (ROOT / "docs" / "configuration.md").read_text()
    block = text.split("## Production behind a TLS proxy", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    env = dict(line.split("=", 1) for line in block.splitlines() if line.strip())
    assert env["SECRET_KEY"] == "<50+ random characters>"
    env["SECRET_KEY"] = secrets.token_urlsafe(50)
    return env


def test_check_deploy_is_clean_with_the_documented_production_environment():
    base = {k: v for k, v in os.environ.items() if k not in CONTROLLED and not k.startswith(("SECURE_", "SESSION_"))}
    checked = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env={**base, **_production_example()},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr
    assert "System check identified no issues" in checked.stdout


def test_embedded_default_is_sqlite_and_the_in_memory_layer():
    loaded = _load(DEBUG="1")
    assert loaded["db"]["ENGINE"] == "django.db.backends.sqlite3"
    assert loaded["layer"]["BACKEND"] == "channels.layers.InMemoryChannelLayer"
    assert loaded["public"] is True
    assert "127.0.0.1" in loaded["hosts"]
    assert loaded["static_from_apps"] is True  # no collectstatic needed for make run


def test_database_url_selects_postgresql_with_the_connection_pool():
    loaded = _load(SECRET_KEY="k", DATABASE_URL="postgres://u:p@db.internal:5433/cm")
    db = loaded["db"]
    assert (db["ENGINE"], db["HOST"], db["PORT"], db["NAME"]) == (
        "django.db.backends.postgresql",
        "db.internal",
        5433,
        "cm",
    )
    assert db["OPTIONS"]["pool"]["max_size"] == 10
    assert db["CONN_MAX_AGE"] == 0
    assert loaded["public"] is False


def test_redis_url_selects_the_pubsub_layer_with_a_socket_timeout_above_5s():
    loaded = _load(SECRET_KEY="k", REDIS_URL="redis://cache:6379/2")
    layer = loaded["layer"]
    assert layer["BACKEND"] == "conflict_monitor.overrides.channels_redis.PubSubChannelLayer"
    (host,) = layer["CONFIG"]["hosts"]
    assert host["address"] == "redis://cache:6379/2"
    assert host["socket_timeout"] > 5


def test_static_files_come_from_the_collected_root_when_there_is_one_else_from_the_apps(tmp_path):
    collected = _load(SECRET_KEY="k", STATIC_ROOT=str(tmp_path))
    assert collected["static_from_apps"] is False  # the image serves what collectstatic gathered
    never_collected = _load(SECRET_KEY="k", STATIC_ROOT=str(tmp_path / "missing"))
    assert never_collected["static_from_apps"] is True  # the launcher outside the image


def test_lists_numbers_and_thresholds_are_parsed():
    loaded = _load(
        SECRET_KEY="k",
        ALLOWED_HOSTS="monitor.example.org, api.example.org",
        CSRF_TRUSTED_ORIGINS="https://monitor.example.org,https://ops.example.org",
        WEBSOCKET_BROADCAST_INTERVAL="2.5",
        WEBSOCKET_MAX_CONNECTIONS="500",
        MONITORING_GEOCODING_WARN="80",
    )
    assert loaded["hosts"] == ["monitor.example.org", "api.example.org"]
    assert loaded["csrf_origins"] == ["https://monitor.example.org", "https://ops.example.org"]
    assert (loaded["interval"], loaded["max_connections"]) == (2.5, 500)
    assert loaded["thresholds"]["geocoding_warn"] == 80.0


@pytest.mark.parametrize(
    ("name", "value"),
    [("WEBSOCKET_BROADCAST_INTERVAL", "soon"), ("DEBUG", "maybe"), ("MONITORING_GEOCODING_WARN", "120")],
)
def test_a_malformed_value_stops_start_up_naming_the_variable(name, value):
    result = _settings(SECRET_KEY="k", **{name: value})
    assert result.returncode != 0
    assert name in result.stderr
