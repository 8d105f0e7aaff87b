"""Every Django process (runserver, the broadcaster, any command) checks the overrides it applies
itself when the app is ready, and refuses to run when an installed package lacks what they rely on."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from psycopg_pool.base import AttemptWithBackoff

ROOT = Path(__file__).resolve().parents[2]

NO_BACKOFF = "from psycopg_pool.base import AttemptWithBackoff\ndel AttemptWithBackoff.DELAY_BACKOFF\n"
NO_RECEIVE = (
    "from channels_redis.pubsub import RedisSingleShardConnection\ndel RedisSingleShardConnection._receive_message\n"
)


def manage_check(tmp_path: Path, change: str, **env: str) -> subprocess.CompletedProcess:
    """``manage.py check`` with ``change`` made to an upstream package before Django starts."""
    (tmp_path / "sitecustomize.py").write_text(change)
    environment = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": f"{tmp_path}:{ROOT}",
        "DJANGO_SETTINGS_MODULE": "conflict_monitor.settings_test",
        "SQLITE_PATH": str(tmp_path / "db.sqlite3"),
        **env,
    }
    argv = [sys.executable, "manage.py", "check"]
    return subprocess.run(argv, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120)


def test_the_steady_database_backoff_is_installed_when_the_app_is_ready():
    assert AttemptWithBackoff.DELAY_BACKOFF == 1.0


def test_a_django_process_refuses_to_start_without_the_pool_member_its_backoff_sets(tmp_path):
    result = manage_check(tmp_path, NO_BACKOFF)
    assert result.returncode != 0
    assert "psycopg_pool.base.AttemptWithBackoff.DELAY_BACKOFF (attribute" in result.stderr, result.stderr
    assert f"psycopg-pool {version('psycopg-pool')} installed" in result.stderr, result.stderr


def test_with_the_pubsub_layer_configured_a_missing_channels_redis_member_stops_django(tmp_path):
    # The layer is only configured: nothing connects to Redis.
    result = manage_check(tmp_path, NO_RECEIVE, REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:1/0"))
    assert result.returncode != 0
    assert "channels_redis.pubsub.RedisSingleShardConnection._receive_message" in result.stderr, result.stderr
    assert f"channels-redis {version('channels-redis')} installed" in result.stderr, result.stderr


def test_without_the_pubsub_layer_channels_redis_internals_are_not_needed(tmp_path):
    result = manage_check(tmp_path, NO_RECEIVE)
    assert result.returncode == 0, result.stderr
